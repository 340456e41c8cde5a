/**
 * Writes the generated parts of docs/protocol.md from the contract in `shared/`:
 * the payload of every client→server event from its zod schema (`z.toJSONSchema`),
 * the ack data and the server→client events from their TypeScript types
 * (`AckData`, `ServerToClientEvents` and their ops twins, read with the
 * TypeScript compiler API), and the wire shapes those types name.
 *
 *   npx tsx scripts/protocol-docs.ts           rewrite the generated regions
 *   npx tsx scripts/protocol-docs.ts --check   exit 1 when they are stale
 *
 * Only the text between `<!-- generated:<region>:start -->` and
 * `<!-- generated:<region>:end -->` is rewritten; the prose around it is the
 * document's own. test/protocol-docs.test.ts fails when a region is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { z } from 'zod';
import { opsRequestSchemas, requestSchemas } from '../shared/events.js';
import { errorCodes, httpStatusOf } from '../shared/errors.js';
import { loginBody, signupBody } from '../shared/schemas/auth.js';
import { loginMfaBody, passwordForgotBody, passwordResetBody } from '../shared/schemas/security.js';

const root = fileURLToPath(new URL('..', import.meta.url));
export const docPath = path.join(root, 'docs', 'protocol.md');
const sharedDir = path.join(root, 'shared') + path.sep;

/** The regions, in the order they appear in the document (shapes are listed where first named). */
export const regionNames = ['errors', 'rest', 'connection', 'tasks', 'reminders', 'chat', 'account', 'ops'] as const;
type Region = (typeof regionNames)[number];

/** Default-namespace events by section; every event must land in exactly one. */
function regionOfEvent(event: string): Region {
  if (['session:ready', 'session:revoked', 'auth:expired'].includes(event)) return 'connection';
  if (event.startsWith('task:')) return 'tasks';
  if (event.startsWith('reminder:') || event.startsWith('push:')) return 'reminders';
  if (event.startsWith('chat:') || event.startsWith('conversation:') || event === 'search') return 'chat';
  if (event.startsWith('auth:') || event.startsWith('user:') || event.startsWith('session:')) return 'account';
  if (event.startsWith('mfa:') || event.startsWith('security:')) return 'account';
  throw new Error(`scripts/protocol-docs.ts: the event "${event}" belongs to no section of docs/protocol.md; add it to regionOfEvent`);
}

/** REST bodies: the paths live in server/features/auth/auth.routes.ts, the schemas in shared/. */
const restBodies: [string, z.ZodType][] = [
  ['POST /signup', signupBody],
  ['POST /login', loginBody],
  ['POST /login/mfa', loginMfaBody],
  ['POST /password/forgot', passwordForgotBody],
  ['POST /password/reset', passwordResetBody],
];
/** REST answers: exported types of shared/schemas/auth.ts. */
const restAnswers: [string, string][] = [
  ['POST /signup', 'AuthResult'],
  ['POST /login', 'AuthResult'],
  ['POST /login/mfa', 'AuthResult'],
  ['POST /refresh', 'RefreshResult'],
];

// ---------------------------------------------------------------- markdown helpers

/** Text for a table cell: pipes escaped (also inside code spans), no line breaks. */
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const code = (s: string) => '`' + s + '`';
const count = (n: number) => n.toLocaleString('en-US');

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

// ---------------------------------------------------------------- zod payloads (JSON Schema)

interface JsonSchema {
  type?: string;
  format?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
  description?: string;
}

const toJson = (schema: z.ZodType, io: 'input' | 'output') => z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;

function range(min: number | undefined, max: number | undefined, unit: string): string {
  const lo = min !== undefined && min > (unit ? 0 : Number.MIN_SAFE_INTEGER) ? min : undefined;
  const hi = max !== undefined && max < Number.MAX_SAFE_INTEGER ? max : undefined;
  const u = unit ? ` ${unit}` : '';
  if (lo !== undefined && hi !== undefined) return lo === hi ? `${count(lo)}${u}` : `${count(lo)}–${count(hi)}${u}`;
  if (hi !== undefined) return `≤ ${count(hi)}${u}`;
  if (lo !== undefined) return `≥ ${count(lo)}${u}`;
  return '';
}

const withLimit = (base: string, limit: string) => (limit ? `${base} (${limit})` : base);

/** One JSON Schema as a short type: `uuid`, `string (1–500 chars)`, `"a" | "b"`, `object | null`. */
function typeText(s: JsonSchema): string {
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return alternatives.map(typeText).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
  switch (s.type) {
    case 'string': {
      const named: Record<string, string> = { uuid: 'uuid', date: 'date', 'date-time': 'timestamp', email: 'email' };
      const base = (s.format && named[s.format]) ?? 'string';
      return withLimit(base, base === 'string' || base === 'email' ? range(s.minLength, s.maxLength, 'chars') : '');
    }
    case 'integer':
    case 'number':
      return withLimit(s.type, range(s.minimum, s.maximum, ''));
    case 'array': {
      const item = s.items ? typeText(s.items) : 'unknown';
      const limit = range(s.minItems, s.maxItems, 'items');
      return withLimit(item.includes(' ') ? `(${item})[]` : `${item}[]`, limit);
    }
    case 'object':
      return 'object';
    case undefined:
      return 'any';
    default:
      return s.type;
  }
}

/** Every field of an object schema, nested objects as dotted paths (as `issues[].path` names them). */
function fieldLines(s: JsonSchema, prefix = ''): string[] {
  const lines: string[] = [];
  const props = s.properties ?? {};
  const required = new Set(s.required ?? []);
  for (const [name, prop] of Object.entries(props)) {
    const fieldPath = prefix + name;
    const notes = [typeText(prop)];
    if (prop.default !== undefined) notes.push(`default ${JSON.stringify(prop.default)}`);
    if (prop.description) notes.push(prop.description);
    lines.push(`${code(fieldPath + (required.has(name) ? '' : '?'))}: ${notes.join(', ')}`);
    const nested = [prop, ...(prop.anyOf ?? prop.oneOf ?? [])].find((p) => p.type === 'object' && p.properties);
    if (nested) lines.push(...fieldLines(nested, `${fieldPath}.`));
  }
  if (s.additionalProperties !== false && prefix === '') lines.push('(other keys allowed)');
  return lines;
}

/** A payload cell: `{}` or one field a line. */
function payloadCell(schema: z.ZodType, io: 'input' | 'output' = 'input'): string {
  const json = toJson(schema, io);
  if (json.type !== 'object') return typeText(json);
  const lines = fieldLines(json);
  return lines.length ? lines.join('<br>') : code('{}');
}

// ---------------------------------------------------------------- TypeScript types

/** Named literal unions with more members than this are listed on their own instead of inline. */
const inlineUnionMax = 6;

interface Shape {
  name: string;
  type: ts.Type;
  symbol: ts.Symbol;
  kind: 'object' | 'enum';
}

class TypeDocs {
  private readonly checker: ts.TypeChecker;
  private readonly exports = new Map<string, Map<string, ts.Symbol>>();
  /** shapes already listed (or documented elsewhere), by name */
  private readonly placed = new Map<string, ts.Type>();
  /** shapes named by what was rendered since the last `takeShapes` */
  private pending: Shape[] = [];

  constructor(files: string[]) {
    const configPath = path.join(root, 'tsconfig.json');
    const config = ts.parseJsonConfigFileContent(ts.readConfigFile(configPath, ts.sys.readFile).config, ts.sys, root);
    const program = ts.createProgram(
      files.map((f) => path.join(root, f)),
      { ...config.options, noEmit: true },
    );
    this.checker = program.getTypeChecker();
    for (const file of files) {
      const source = program.getSourceFile(path.join(root, file));
      const moduleSymbol = source && this.checker.getSymbolAtLocation(source);
      if (!moduleSymbol) throw new Error(`cannot read ${file}`);
      this.exports.set(file, new Map(this.checker.getExportsOfModule(moduleSymbol).map((s) => [s.name, s])));
    }
  }

  /** The declared type of an exported interface or type alias. */
  exported(file: string, name: string): ts.Type {
    const symbol = this.exports.get(file)?.get(name);
    if (!symbol) throw new Error(`scripts/protocol-docs.ts: ${file} no longer exports ${name}`);
    const target = symbol.flags & ts.SymbolFlags.Alias ? this.checker.getAliasedSymbol(symbol) : symbol;
    return this.checker.getDeclaredTypeOfSymbol(target);
  }

  /** The properties of an event map or ack map: name → type. */
  members(type: ts.Type): [string, ts.Type][] {
    return type.getProperties().map((p) => [p.name, this.checker.getTypeOfSymbol(p)]);
  }

  /** The type of the first parameter of a listener type `(data: T) => void`. */
  firstParameter(fn: ts.Type): ts.Type {
    const param = fn.getCallSignatures()[0]?.getParameters()[0];
    if (!param) throw new Error(`expected a listener with one parameter, got ${this.checker.typeToString(fn)}`);
    return this.checker.getTypeOfSymbol(param);
  }

  /** Marks a name as documented elsewhere in the page, so it is not listed as a shape. */
  documentedElsewhere(name: string, type: ts.Type): void {
    this.placed.set(name, type);
  }

  private fromShared(symbol: ts.Symbol | undefined): boolean {
    return (symbol?.declarations ?? []).some((d) => path.normalize(d.getSourceFile().fileName).startsWith(sharedDir));
  }

  private name(shape: Omit<Shape, 'name'>): string {
    const name = shape.symbol.name;
    const known = this.placed.get(name) ?? this.pending.find((s) => s.name === name)?.type;
    if (known && known !== shape.type) throw new Error(`two different types are called ${name}`);
    if (!known) this.pending.push({ name, ...shape });
    return name;
  }

  private isLiteralUnion(type: ts.Type): type is ts.UnionType {
    return type.isUnion() && type.types.every((t) => t.isLiteral() || (t.flags & ts.TypeFlags.BooleanLiteral) !== 0);
  }

  /**
   * The members of a named literal union in the order its declaration gives them (`'a' | 'b'`, or
   * `(typeof tuple)[number]`), rather than the order of the checker's type ids.
   */
  private declaredOrder(type: ts.UnionType, alias: ts.Symbol): ts.Type[] {
    const declaration = alias.declarations?.find(ts.isTypeAliasDeclaration);
    const fromNode = (node: ts.TypeNode): ts.Type[] | undefined => {
      if (ts.isParenthesizedTypeNode(node)) return fromNode(node.type);
      if (ts.isUnionTypeNode(node)) return node.types.flatMap((n) => fromNode(n) ?? [this.checker.getTypeFromTypeNode(n)]);
      if (ts.isIndexedAccessTypeNode(node)) {
        const tuple = this.checker.getTypeFromTypeNode(node.objectType);
        if (this.checker.isTupleType(tuple)) return [...this.checker.getTypeArguments(tuple as ts.TypeReference)];
      }
      return undefined;
    };
    const order = declaration && fromNode(declaration.type);
    const same = order && order.length === type.types.length && type.types.every((t) => order.includes(t));
    return same ? order : type.types;
  }

  /**
   * A type as the page shows it: shapes by name, anonymous objects inline, `undefined` of optional
   * fields left out. `node`, the type as written (a property's annotation), keeps the order of its unions.
   */
  render(type: ts.Type, optional = false, node?: ts.TypeNode): string {
    const { checker } = this;
    if (node && ts.isParenthesizedTypeNode(node)) return this.render(type, optional, node.type);
    if (node && ts.isUnionTypeNode(node)) {
      const members = node.types
        .map((n) => ({ n, t: checker.getTypeFromTypeNode(n) }))
        .filter(({ t }) => !(optional && t.flags & ts.TypeFlags.Undefined));
      return members.map(({ n, t }) => this.render(t, false, n)).join(' | ');
    }
    if (node && ts.isArrayTypeNode(node) && checker.isArrayType(type)) {
      return this.arrayOf(this.render(checker.getTypeArguments(type as ts.TypeReference)[0]!, false, node.elementType));
    }
    const alias = this.aliasOf(type, node);
    if (alias && this.fromShared(alias)) {
      if (this.isLiteralUnion(type)) {
        if (type.types.length > inlineUnionMax) return this.name({ type, symbol: alias, kind: 'enum' });
        return this.declaredOrder(type, alias)
          .map((t) => this.render(t))
          .join(' | ');
      }
      if (!type.isUnion() && type.flags & ts.TypeFlags.Object) return this.name({ type, symbol: alias, kind: 'object' });
    }
    if (alias && !this.fromShared(alias) && type.aliasTypeArguments?.length) {
      const args = type.aliasTypeArguments;
      // `Record<string, never>`: an empty object.
      if (alias.name === 'Record' && args[1] && args[1].flags & ts.TypeFlags.Never) return '{}';
      return `${alias.name}<${args.map((t) => this.render(t)).join(', ')}>`;
    }
    if (type.isUnion()) {
      let members = type.types.filter((t) => !(optional && t.flags & ts.TypeFlags.Undefined));
      const bools = members.filter((t) => t.flags & ts.TypeFlags.BooleanLiteral);
      const parts: string[] = [];
      if (bools.length === 2) {
        members = members.filter((t) => !bools.includes(t));
        parts.push('boolean');
      }
      // `null` last, as a reader expects `Task | null`.
      members.sort((a, b) => Number((a.flags & ts.TypeFlags.Null) !== 0) - Number((b.flags & ts.TypeFlags.Null) !== 0));
      parts.push(...members.map((t) => this.render(t)));
      return parts.join(' | ');
    }
    if (type.isIntersection()) return type.types.map((t) => this.render(t)).join(' & ');
    if (type.isStringLiteral()) return JSON.stringify(type.value);
    if (type.isNumberLiteral()) return String(type.value);
    if (checker.isArrayType(type)) return this.arrayOf(this.render(checker.getTypeArguments(type as ts.TypeReference)[0]!));
    if (type.flags & ts.TypeFlags.Object) {
      const symbol = type.getSymbol();
      if (symbol && symbol.flags & ts.SymbolFlags.Interface && this.fromShared(symbol)) return this.name({ type, symbol, kind: 'object' });
      const props = type.getProperties();
      if (props.length === 0) return '{}';
      return `{ ${props.map((p) => `${this.propertyName(p)}: ${this.propertyType(p)}`).join(', ')} }`;
    }
    return checker.typeToString(type);
  }

  /**
   * The type alias a type was written as: the checker's own record, or the name in the annotation
   * (the checker shares one union among aliases of the same members and keeps only the first name).
   */
  private aliasOf(type: ts.Type, node: ts.TypeNode | undefined): ts.Symbol | undefined {
    if (node && ts.isTypeReferenceNode(node)) {
      let symbol = this.checker.getSymbolAtLocation(node.typeName);
      if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = this.checker.getAliasedSymbol(symbol);
      if (symbol && symbol.flags & ts.SymbolFlags.TypeAlias) return symbol;
    }
    return type.aliasSymbol;
  }

  private arrayOf(item: string): string {
    return /[ |&]/.test(item) && !item.startsWith('{') ? `(${item})[]` : `${item}[]`;
  }

  private propertyName(p: ts.Symbol): string {
    return p.name + (p.flags & ts.SymbolFlags.Optional ? '?' : '');
  }

  private propertyType(p: ts.Symbol): string {
    const declaration = p.valueDeclaration;
    const node = declaration && ts.isPropertySignature(declaration) ? declaration.type : undefined;
    return this.render(this.checker.getTypeOfSymbol(p), (p.flags & ts.SymbolFlags.Optional) !== 0, node);
  }

  private doc(symbol: ts.Symbol): string {
    return ts.displayPartsToString(symbol.getDocumentationComment(this.checker)).trim();
  }

  /** The shapes named since the last call (and those they name), as markdown, and marks them placed. */
  takeShapes(): string {
    const out: string[] = [];
    while (this.pending.length) {
      const shape = this.pending.shift()!;
      this.placed.set(shape.name, shape.type);
      const about = this.doc(shape.symbol);
      const title = `**${code(shape.name)}**${about ? `: ${about.replace(/\s*\n\s*/g, ' ')}` : ''}`;
      if (shape.kind === 'enum') {
        const values = this.declaredOrder(shape.type as ts.UnionType, shape.symbol).map((t) => code(this.render(t)));
        out.push(`${title}${about ? '.' : ''} One of ${values.join(', ')}.`);
        continue;
      }
      const rows = shape.type.getProperties().map((p) => [code(this.propertyName(p)), code(this.propertyType(p)), this.doc(p)]);
      out.push(`${title}\n\n${table(['field', 'type', 'note'], rows)}`);
    }
    return out.join('\n\n');
  }
}

// ---------------------------------------------------------------- the regions

/** The text of every generated region, by name. */
export function renderRegions(): Record<Region, string> {
  const types = new TypeDocs(['shared/events.ts', 'shared/errors.ts', 'shared/schemas/auth.ts']);
  const ev = (name: string) => types.exported('shared/events.ts', name);
  const ackData = new Map(types.members(ev('AckData')));
  const opsAckData = new Map(types.members(ev('OpsAckData')));
  const serverEvents = types.members(ev('ServerToClientEvents')).map(([name, fn]) => [name, types.firstParameter(fn)] as const);
  const opsServerEvents = types.members(ev('OpsServerToClientEvents')).map(([name, fn]) => [name, types.firstParameter(fn)] as const);

  const ackOf = (acks: Map<string, ts.Type>, event: string) => {
    const type = acks.get(event);
    if (!type) throw new Error(`scripts/protocol-docs.ts: ${event} has no entry in its ack map`);
    return code(types.render(type));
  };

  const requestTable = (events: [string, z.ZodType][], acks: Map<string, ts.Type>) =>
    table(
      ['event', 'payload', 'ack data'],
      events.map(([event, schema]) => [code(event), payloadCell(schema), ackOf(acks, event)]),
    );
  const pushTable = (events: (readonly [string, ts.Type])[]) =>
    table(
      ['event', 'payload'],
      events.map(([event, type]) => [code(event), code(types.render(type))]),
    );

  const section = (parts: string[]) => {
    const shapes = types.takeShapes();
    return [...parts.filter(Boolean), shapes].filter(Boolean).join('\n\n');
  };

  const regions = {} as Record<Region, string>;

  // §1: the codes and their statuses are one table; the error shape (listed below it, as shapes are) names them.
  types.documentedElsewhere('ErrorCode', types.exported('shared/errors.ts', 'ErrorCode'));
  types.render(types.exported('shared/errors.ts', 'WireError'));
  regions.errors = section([
    table(
      ['code', 'HTTP status'],
      errorCodes.map((c) => [code(c), String(httpStatusOf[c])]),
    ),
  ]);

  regions.rest = section([
    table(
      ['request', 'body'],
      restBodies.map(([route, schema]) => [code(route), payloadCell(schema, 'output')]),
    ),
    table(
      ['request', 'answer body'],
      restAnswers.map(([route, name]) => [code(route), code(types.render(types.exported('shared/schemas/auth.ts', name)))]),
    ),
  ]);

  const requests = Object.entries(requestSchemas) as [string, z.ZodType][];
  const inRegion = <T extends readonly [string, unknown]>(list: readonly T[], region: Region) => list.filter(([e]) => regionOfEvent(e) === region);
  // Every event is placed (or the generator fails), whatever its section.
  for (const [event] of [...requests, ...serverEvents]) regionOfEvent(event);

  for (const region of ['connection', 'tasks', 'reminders', 'chat', 'account'] as const) {
    const reqs = inRegion(requests, region);
    const pushes = inRegion(serverEvents, region);
    regions[region] = section([
      reqs.length ? `Client → server:\n\n${requestTable(reqs, ackData)}` : '',
      pushes.length ? `Server → client:\n\n${pushTable(pushes)}` : '',
    ]);
  }

  regions.ops = section([
    `Client → server (\`/ops\`):\n\n${requestTable(Object.entries(opsRequestSchemas) as [string, z.ZodType][], opsAckData)}`,
    `Server → client (\`/ops\`):\n\n${pushTable(opsServerEvents)}`,
  ]);

  return regions;
}

const marker = (region: string, end: 'start' | 'end') => `<!-- generated:${region}:${end} -->`;

/** `doc` with every region's text replaced by `regions`; throws when a region's markers are missing or doubled. */
export function applyRegions(doc: string, regions: Record<string, string>): string {
  let out = doc;
  for (const [region, text] of Object.entries(regions)) {
    const start = marker(region, 'start');
    const end = marker(region, 'end');
    const from = out.indexOf(start);
    const to = out.indexOf(end);
    if (from < 0 || to < from || out.indexOf(start, from + 1) >= 0 || out.indexOf(end, to + 1) >= 0) {
      throw new Error(`docs/protocol.md needs exactly one "${start}" followed by one "${end}"`);
    }
    out = `${out.slice(0, from + start.length)}\n<!-- Generated by \`npm run docs:protocol\` from shared/; do not edit by hand. -->\n\n${text}\n\n${out.slice(to)}`;
  }
  return out;
}

/** docs/protocol.md as it should be. */
export function renderDoc(doc = readFileSync(docPath, 'utf8')): string {
  return applyRegions(doc, renderRegions());
}

function main(): void {
  const current = readFileSync(docPath, 'utf8');
  const expected = renderDoc(current);
  const relative = path.relative(process.cwd(), docPath);
  if (process.argv.includes('--check')) {
    if (current !== expected) {
      console.error(`${relative} is stale: run \`npm run docs:protocol\``);
      process.exit(1);
    }
    console.log(`${relative} is up to date`);
    return;
  }
  if (current === expected) {
    console.log(`${relative} is up to date`);
    return;
  }
  writeFileSync(docPath, expected);
  console.log(`${relative} rewritten`);
}

if (process.argv[1] && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url) main();
