import { mount } from 'svelte';
import './app.css';
import App from './App.svelte';
import { SamApp } from './lib/app.svelte';

const app = new SamApp();
mount(App, { target: document.getElementById('app')!, props: { app } });
app.start();
