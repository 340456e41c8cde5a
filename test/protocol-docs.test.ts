/**
 * docs/protocol.md's generated parts (the event tables and shapes) are rendered
 * again from the schemas and types in `shared/` and must match the file.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { docPath, regionNames, renderDoc } from '../scripts/protocol-docs.js';

describe('docs/protocol.md', () => {
  it('has the generated parts that shared/ gives today (else run `npm run docs:protocol`)', () => {
    const current = readFileSync(docPath, 'utf8');
    for (const region of regionNames) expect(current).toContain(`<!-- generated:${region}:start -->`);
    expect(current, 'docs/protocol.md is stale: run `npm run docs:protocol` and commit the result').toBe(renderDoc(current));
  });
});
