// The markdown table (Sam | bare | ratio | target), the target verdicts, the
// retried steps and, when given a baseline run of the same mode, the Sam/bare
// ratios against it. A missed target is reported, never a failure of the bench.

/** The issue's two-node figure: the bench checks two nodes at this many sockets, and at twice one node's fan-out. */
export const TWO_NODE_TARGET_SOCKETS = 36_000;

const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? '—' : typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(digits)) : String(v));
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b !== 0 ? Math.round((100 * a) / b) / 100 : null);
const at = (rows, rate) => rows?.find((r) => r.offeredPerSec === rate) ?? null;

/** CPU ms per unit of work by role (server / PostgreSQL / Redis / generators). */
const cpuPer = (c, digits = 2) => (c ? [c.server, c.postgres, c.redis, c.generators].map((v) => fmt(v, digits)).join(' / ') : null);
/** … per acknowledged update, from a fan-out row. */
const cpuOf = (row) => cpuPer(row?.cpu?.msPer);
const pair = (q) => (q ? `${fmt(q.p50)} / ${fmt(q.p99)}` : null);

/** The processes whose CPU counts as the server side's: the server, and the PostgreSQL and Redis it waits on (bare uses neither). */
const SERVER_SIDE = ['server', 'postgres', 'redis'];
/** Server-side CPU ms per unit of work of a `cpu` record (from its totals when it has them: per-role means are rounded). */
function serverSideMs(cpu) {
  if (!cpu) return null;
  if (cpu.ms && cpu.units) return Math.round((1e4 * serverSide(cpu.ms)) / cpu.units) / 1e4;
  if (cpu.msPer) return Math.round(1e4 * serverSide(cpu.msPer)) / 1e4;
  return null;
}

/** The sum of the server-side roles of a record by role (CPU ms, or ms per unit). */
function serverSide(byRole) {
  return SERVER_SIDE.reduce((sum, k) => sum + (byRole[k] ?? 0), 0);
}

/** The ratio targets on CPU per operation, Sam against bare at the same fixed rate (`config.cpuRate`, 1,000/s). */
export const CPU_TARGETS = { connect: 1.3, update: 2, delta: 1.2 };

/** The rows at the rate of record: the handshake step, the fan-out rate (a retried step's figures are the retry's). */
const cpuRateOf = (res) => res.config?.cpuRate ?? 1000;
const hsAt = (x, rate) => x.handshakes?.rows?.findLast((r) => r.rate === rate) ?? null;

/** The fan-out's CPU reading of record: its window of a whole ping interval when it ran one, else the ramp's step. */
const updateCpuRow = (x, rate) => x.fanout?.cpuWindow ?? at(x.fanout?.rows, rate);

/** Server-side CPU per operation for one kind of server: per connect and per update at the rate of record, per relayed delta. */
function cpuPerOp(x, rate) {
  return {
    connect: serverSideMs(hsAt(x, rate)?.cpu),
    update: serverSideMs(updateCpuRow(x, rate)?.cpu),
    delta: serverSideMs(x.relay?.cpu),
  };
}

/**
 * The median of the numbers of `xs`, null when there are none. Not `pct(xs, 50)`: that is the lower middle of an
 * even count, which would favour Sam in a run of `--set pairedRounds=2`.
 */
const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : Math.round(1e4 * ((v[m - 1] + v[m]) / 2)) / 1e4;
};

/**
 * True when a paired round of `what` did not do all its work: a failed connect, an update lost or unacknowledged, a
 * stream that did not reach every tab. Its CPU per unit would be spent on other work than the other node's.
 */
const incompleteRound = {
  handshakes: (r) => r.failed > 0,
  updates: (r) => r.lost > 0 || r.unacked > 0,
  relay: (r) => r.connectFailed > 0 || r.incompleteTabs > 0 || r.streamsMeasured < r.streams || Object.keys(r.acks ?? {}).some((k) => k !== 'ok'),
};

/**
 * The paired rounds of `what` ('handshakes', 'updates' or 'relay', `pairedCpu`): Sam's and bare's median server-side CPU ms
 * per unit, and the median and range of the pairs' Sam/bare ratios, over the pairs whose two rounds did all their work
 * (`incomplete`: the pairs left out); null when the run had none.
 */
function pairedOf(res, what) {
  const all = res.paired?.[what];
  if (!all?.length) return null;
  const pairs = all.filter((p) => !incompleteRound[what](p.sam) && !incompleteRound[what](p.bare));
  const incomplete = all.length - pairs.length;
  const sam = pairs.map((p) => serverSideMs(p.sam.cpu));
  const bare = pairs.map((p) => serverSideMs(p.bare.cpu));
  const ratios = sam.map((v, i) => ratio(v, bare[i])).filter((r) => r !== null);
  const some = ratios.length > 0;
  return { sam: median(sam), bare: median(bare), ratio: median(ratios), min: some ? Math.min(...ratios) : null, max: some ? Math.max(...ratios) : null, pairs: ratios.length, incomplete };
}

/** How many pairs a paired row's median is of, and how many were left out. */
const pairsText = (p) => (p ? `${p.pairs}${p.incomplete ? `; ${p.incomplete} left out, work lost` : ''}` : '—');

/** Server-side CPU ms per unit above the phase's rest reading (`aboveRest`, per role), the marginal cost of one. */
function aboveRestMs(cpu) {
  return cpu?.aboveRest ? Math.round(1e4 * serverSide(cpu.aboveRest)) / 1e4 : null;
}

/** A phase's rest reading as server-side CPU ms per second (server + PostgreSQL + Redis). */
function restPerSec(rest) {
  return rest ? Math.round(serverSide(rest.ms) / (rest.wallMs / 1000)) : null;
}

/** `baseline`: { file, data } of a committed run (bench/baseline.json), compared with when both are of the same mode. */
export function renderReport(res, baseline = null) {
  const s = res.sam ?? {};
  const b = res.bare ?? {};
  const cap = (x) => x.capacity?.largestOkStep ?? null;
  const capRow = (x) => x.capacity?.steps?.find((r) => r.step === x.capacity.largestOkStep) ?? x.capacity?.steps?.[0] ?? null;
  const perSocketKB = (x) => {
    const r = capRow(x);
    return r?.rssPerSocketBytes ? Math.round(r.rssPerSocketBytes / 102.4) / 10 : null;
  };
  const heapKB = (x) => {
    const r = capRow(x);
    return r?.heapPerSocketBytes ? Math.round(r.heapPerSocketBytes / 102.4) / 10 : null;
  };
  const f1000 = (x) => at(x.fanout?.rows, 1000);
  const t1000 = (x) => at(x.twoNodes?.fanout?.rows, 1000);
  const rate = cpuRateOf(res);
  const sc = cpuPerOp(s, rate);
  const bc = cpuPerOp(b, rate);
  const rateText = rate.toLocaleString('en-US');
  const rm = s.reminders;
  const pc = pairedOf(res, 'handshakes');
  const pu = pairedOf(res, 'updates');
  const pd = pairedOf(res, 'relay');

  const rows = [
    ['1. sockets, largest step with ack p99 ≤ 50 ms', cap(s), cap(b), '≥ 18,000 and ≥ 0.9× bare'],
    ['1. ack p99 at that step (ms)', capRow(s)?.ack?.p99, capRow(b)?.ack?.p99, '≤ 50'],
    ['1. RSS per socket (KB)', perSocketKB(s), perSocketKB(b), '≤ 25 and ≤ 1.5× bare'],
    ['1. heap per socket (KB, after a full GC)', heapKB(s), heapKB(b), ''],
    ['2a. handshakes/s with connect p99 ≤ 100 ms', s.handshakes?.maxRateP99Under100, b.handshakes?.maxRateP99Under100, '≥ 1,000 and ≥ 0.85× bare'],
    [`2a. CPU per connect at ${rateText}/s (ms): server / PostgreSQL / Redis / generators`, cpuPer(hsAt(s, rate)?.cpu?.msPer), cpuPer(hsAt(b, rate)?.cpu?.msPer), ''],
    [`2a. CPU per connect at ${rateText}/s, server + PostgreSQL + Redis (ms)`, sc.connect, bc.connect, `≤ ${CPU_TARGETS.connect}× bare`, 3],
    ['2a. … of which above rest: the connect itself (ms)', aboveRestMs(hsAt(s, rate)?.cpu), aboveRestMs(hsAt(b, rate)?.cpu), '', 3],
    ['2a. at rest before the ramp, server + PostgreSQL + Redis (CPU ms per second)', restPerSec(s.handshakes?.rest), restPerSec(b.handshakes?.rest), ''],
    ['2b. reconnect storm: sockets', s.reconnect?.sockets, b.reconnect?.sockets, '18,000'],
    ['2b. reconnect storm: 99% back after (s, from the restart)', sec(s.reconnect?.ms99), sec(b.reconnect?.ms99), '≤ 30'],
    ['3. fan-out sockets (3 tabs per user)', s.fanoutSockets, b.fanoutSockets, 'the largest step of 1'],
    ['3. fan-out at 1,000/s: achieved updates/s', f1000(s)?.achievedPerSec, f1000(b)?.achievedPerSec, '1,000'],
    ['3. delivery p50 (ms)', f1000(s)?.delivery?.p50, f1000(b)?.delivery?.p50, ''],
    ['3. delivery p99 (ms)', f1000(s)?.delivery?.p99, f1000(b)?.delivery?.p99, '≤ 50'],
    ['3. delivery p99.9 (ms)', f1000(s)?.delivery?.p999, f1000(b)?.delivery?.p999, ''],
    ['3. last-tab p99 (ms)', f1000(s)?.lastTab?.p99, f1000(b)?.lastTab?.p99, ''],
    ['3. lost deliveries (of expected)', lostOf(f1000(s)), lostOf(f1000(b)), '0'],
    [`3. CPU per update at ${rateText}/s (ms): server / PostgreSQL / Redis / generators`, cpuOf(updateCpuRow(s, rate)), cpuOf(updateCpuRow(b, rate)), ''],
    [`3. CPU per update at ${rateText}/s, server + PostgreSQL + Redis (ms)`, sc.update, bc.update, `≤ ${CPU_TARGETS.update}× bare`, 3],
    ['3. … of which above rest: the update itself (ms)', aboveRestMs(updateCpuRow(s, rate)?.cpu), aboveRestMs(updateCpuRow(b, rate)?.cpu), '', 3],
    ['3. at rest with the tabs connected, server + PostgreSQL + Redis (CPU ms per second)', restPerSec(s.fanout?.rest), restPerSec(b.fanout?.rest), ''],
    ['3. delivery capacity (updates/s, p99 ≤ 50 ms, none lost)', s.fanout?.capacityPerSec, b.fanout?.capacityPerSec, '≥ 0.8× bare'],
    ['4. relay: added time to first delta p50 (ms)', s.relay?.firstDeltaAddedMs?.p50, b.relay?.firstDeltaAddedMs?.p50, '≤ 2'],
    ['4. relay: added time to first delta p99 (ms)', s.relay?.firstDeltaAddedMs?.p99, b.relay?.firstDeltaAddedMs?.p99, '≤ 15'],
    ['4. relay: send to upstream request p50 / p99 (ms)', pair(s.relay?.sendToUpstreamMs), pair(b.relay?.sendToUpstreamMs), ''],
    ['4. relay: added per delta p99 (ms)', s.relay?.deltaAddedMs?.p99, b.relay?.deltaAddedMs?.p99, ''],
    ['4. relay: added inter-delta gap p99 (ms)', s.relay?.interDeltaAddedMs?.p99, b.relay?.interDeltaAddedMs?.p99, ''],
    ['4. relay: chat:delta frames per tab, per 100 upstream deltas', s.relay?.framesPerTabPer100Deltas, b.relay?.framesPerTabPer100Deltas, ''],
    ['4. relay: CPU per upstream delta (ms): server / PostgreSQL / Redis / generators', cpuPer(s.relay?.cpu?.msPer, 3), cpuPer(b.relay?.cpu?.msPer, 3), ''],
    ['4. relay: CPU per upstream delta, server + PostgreSQL + Redis (ms)', sc.delta, bc.delta, `≤ ${CPU_TARGETS.delta}× bare`, 3],
    ['5. logins/s achieved (offered ' + (s.logins?.offeredPerSec ?? '—') + '/s)', s.logins?.achievedPerSec, null, '≥ 60'],
    ['5. login p99 (ms)', s.logins?.login?.p99, null, ''],
    ['5. socket ack p99 before → during logins (ms)', s.logins ? `${fmt(s.logins.socketAckBefore?.p99)} → ${fmt(s.logins.socketAckDuring?.p99)}` : null, null, 'at most doubles'],
    ['6. two nodes: fan-out sockets', s.twoNodes?.fanoutSockets, b.twoNodes?.fanoutSockets, ''],
    ['6. two nodes at 1,000/s: delivery p50 (ms)', t1000(s)?.delivery?.p50, t1000(b)?.delivery?.p50, ''],
    ['6. two nodes at 1,000/s: delivery p99 (ms)', t1000(s)?.delivery?.p99, t1000(b)?.delivery?.p99, '≤ 50'],
    ['6. two nodes at 1,000/s: delivery p99.9 (ms)', t1000(s)?.delivery?.p999, t1000(b)?.delivery?.p999, ''],
    ['6. two nodes at 1,000/s: lost', lostOf(t1000(s)), lostOf(t1000(b)), '0'],
    ['6. two nodes: delivery capacity (updates/s)', s.twoNodes?.fanout?.capacityPerSec, b.twoNodes?.fanout?.capacityPerSec, ''],
    ['6. two nodes: capacity check sockets / ack p99 (ms)', twoSteps(s), twoSteps(b), '≥ 36,000 / ≤ 50'],
    // Sam only: bare has no reminders, so these rows have no bare figure and no ratio.
    [`7. reminders, Sam only: fired of set${rm ? ` (due within ${rm.spreadMs / 1000} s, two nodes, ${rm.sockets} tabs)` : ''}`, rm ? `${rm.fired} of ${rm.setup.acked}` : null, null, rm ? `${rm.reminders}` : ''],
    ['7. reminders: set by task:create, ack p99 (ms); last ack before the first due time (s)', rm ? `${fmt(rm.setup.ack.p99)}; ${fmt(sec(rm.setup.doneBeforeFirstDueMs))}` : null, null, '> 0: setting is over when the window opens'],
    ['7. reminders: delivery lag p50 / p99 / max, every tab (ms)', rm ? `${fmt(rm.lagMs.p50)} / ${fmt(rm.lagMs.p99)} / ${fmt(rm.lagMs.max)}` : null, null, 'p99 ≤ 5,000 (REM-1)'],
    ['7. reminders: tab deliveries lost / duplicated / late (of expected)', rm ? `${rm.lost} / ${rm.duplicates} / ${rm.late} of ${rm.tabDeliveriesExpected}` : null, null, '0 / 0 / 0'],
    ['7. reminders: marked delivered after their time p50 / p99 (ms, server side)', rm?.db ? `${fmt(rm.db.firedLagMs.p50)} / ${fmt(rm.db.firedLagMs.p99)}` : null, null, ''],
    ['7. reminders: CPU per reminder fired (ms): server / PostgreSQL / Redis / generators', cpuPer(rm?.cpu?.msPer, 3), null, ''],
    ['7. reminders: … above the same time at rest, tabs connected (ms)', cpuPer(rm?.cpu?.aboveRest, 3), null, ''],
    // Sam's and bare's medians; the ratio is the median of the pairs' ratios (each pair shares its moment), as in the verdicts.
    [`8. paired rounds: CPU per connect at ${rateText}/s, server + PostgreSQL + Redis (ms, median of ${pairsText(pc)})`, pc?.sam, pc?.bare, `≤ ${CPU_TARGETS.connect}× bare`, 3, pc?.ratio],
    [`8. paired rounds: CPU per update at ${rateText}/s, server + PostgreSQL + Redis (ms, median of ${pairsText(pu)})`, pu?.sam, pu?.bare, `≤ ${CPU_TARGETS.update}× bare`, 3, pu?.ratio],
    [`8. paired rounds: CPU per upstream delta, server + PostgreSQL + Redis (ms, median of ${pairsText(pd)})`, pd?.sam, pd?.bare, `≤ ${CPU_TARGETS.delta}× bare`, 3, pd?.ratio],
  ];

  const lines = [
    `### Sam vs bare Socket.IO — ${res.mode} run, ${res.date} (${res.machine.cpus} cores; server, generators, PostgreSQL and Redis share them)`,
    '',
    `Load average (1 min) at each phase: ${(res.loadAverages ?? []).map((l) => `${l.phase} ${l.load1}`).join(', ')}. Above ~1 before a phase means other work shared the 2 cores and the figures are pessimistic.`,
    '',
    '| figure | Sam | bare | Sam/bare | target |',
    '|---|---:|---:|---:|---|',
    ...rows.map(([name, sv, bv, target, digits = 1, r = ratio(sv, bv)]) => `| ${name} | ${fmt(sv, digits)} | ${fmt(bv, digits)} | ${fmt(r, 2)} | ${target} |`),
  ];

  const targets = verdicts(s, b, { cap, perSocketKB, f1000, cpu: { sam: sc, bare: bc }, paired: { connect: pc, update: pu, delta: pd }, rateText });
  lines.push('', '| target | measured | met |', '|---|---|---|', ...targets.map((t) => `| ${t.target} | ${t.measured} | ${t.met === null ? 'not measured' : t.met ? 'yes' : '**no**'} |`));
  lines.push('', ...retryLines(res));
  const warm = warmUpLines(res);
  if (warm.length) lines.push('', ...warm);
  let comparison = null;
  if (baseline) {
    comparison = compare(res, baseline.data);
    lines.push('', ...comparisonLines(res, baseline, comparison));
  }
  if (s.profiles?.length) {
    for (const p of s.profiles) {
      lines.push('', `CPU profile ${p.file} (busy ${p.busyMs} ms of ${p.totalMs} ms), top self time:`, '');
      for (const r of p.rows.slice(0, 15)) lines.push(`- ${r.pctOfBusy}% ${r.ms} ms ${r.fn}`);
    }
  }
  if (s.profilePhases?.length) {
    lines.push(
      '',
      "Sam's main thread in each phase (CPU profile): how busy it was, and where its busy time went. The socket layer is ws, engine.io, socket.io and the Node internals they call, which bare runs too; the rest, GC aside, is work bare does not do.",
      '',
      '| phase | profile | busy | GC | socket layer | the rest | top packages (share of busy) |',
      '|---|---|---:|---:|---:|---:|---|',
      ...s.profilePhases.map(
        (w) => `| ${w.phase} | ${w.file} | ${w.busyPct}% of ${sec(w.wallMs)} s | ${w.gcPct}% | ${w.socketLayerPct}% | ${w.otherPct}% | ${w.packages.map((p) => `${p.pkg} ${p.pctOfBusy}%`).join(', ')} |`,
      ),
    );
  }
  return { markdown: lines.join('\n'), targets, comparison };
}

/** Every retried step, Sam's then bare's; a step failed twice is what the phase counted. */
function retryLines(res) {
  const all = [['Sam', res.sam], ['bare', res.bare]].flatMap(([kind, x]) => (x?.retries ?? []).map((r) => ({ kind, ...r })));
  if (all.length === 0) return ['Retried steps: none (a failed step runs once more before its phase counts it as failed).'];
  return [
    'Retried steps (a failed step runs once more before its phase counts it as failed; the retry\'s figures are the ones above):',
    '',
    ...all.map((r) => `- ${r.kind}, ${r.phase}, ${r.step}: ${r.first} → ${r.retried ? (r.passed ? 'passed on retry' : `failed again (${r.second})`) : 'not retried, the retry budget was spent'}`),
  ];
}

function warmUpLines(res) {
  const all = [['Sam', res.sam], ['bare', res.bare]].flatMap(([kind, x]) => (x?.warmUps ?? []).map((w) => `${kind} ${w.phase.split(' ').slice(1).join(' ')} ${sec(w.ms)} s`));
  return all.length ? [`Warm-ups (unmeasured, before every phase but the storm): ${all.join(', ')}.`] : [];
}

/**
 * The Sam/bare ratios that have targets, and whether a higher ratio is better: the ones a change must not
 * worsen by more than 10% against the baseline.
 */
function ratiosOf(res) {
  const s = res.sam ?? {};
  const b = res.bare ?? {};
  const rate = cpuRateOf(res);
  const capRow = (x) => x.capacity?.steps?.find((r) => r.step === x.capacity.largestOkStep) ?? x.capacity?.steps?.[0] ?? null;
  const sc = cpuPerOp(s, rate);
  const bc = cpuPerOp(b, rate);
  return [
    ['sockets (largest step, ack p99 ≤ 50 ms)', ratio(s.capacity?.largestOkStep, b.capacity?.largestOkStep), true],
    ['RSS per socket', ratio(capRow(s)?.rssPerSocketBytes, capRow(b)?.rssPerSocketBytes), false],
    ['handshakes/s (p99 ≤ 100 ms)', ratio(s.handshakes?.maxRateP99Under100, b.handshakes?.maxRateP99Under100), true],
    ['fan-out delivery capacity', ratio(s.fanout?.capacityPerSec, b.fanout?.capacityPerSec), true],
    ['CPU per connect', ratio(sc.connect, bc.connect), false],
    ['CPU per update', ratio(sc.update, bc.update), false],
    ['CPU per relayed delta', ratio(sc.delta, bc.delta), false],
    ['CPU per connect, paired rounds (median)', pairedOf(res, 'handshakes')?.ratio ?? null, false],
    ['CPU per update, paired rounds (median)', pairedOf(res, 'updates')?.ratio ?? null, false],
    ['CPU per relayed delta, paired rounds (median)', pairedOf(res, 'relay')?.ratio ?? null, false],
  ];
}

function compare(res, base) {
  if (!base || base.mode !== res.mode) return null;
  const before = new Map(ratiosOf(base).map(([name, v]) => [name, v]));
  return ratiosOf(res).map(([name, now, higherIsBetter]) => {
    const then = before.get(name);
    const change = typeof now === 'number' && typeof then === 'number' && then !== 0 ? Math.round((1000 * (now - then)) / then) / 10 : null;
    const worse = change === null ? null : higherIsBetter ? change < -10 : change > 10;
    return { ratio: name, baseline: then ?? null, now: now ?? null, changePct: change, worseBy10Pct: worse };
  });
}

function comparisonLines(res, baseline, comparison) {
  const base = baseline.data;
  const head = `Against ${baseline.file} (${base.date}, ${base.mode} run, ${base.machine?.model ?? 'unknown CPU'})`;
  if (!comparison) return [`${head}: not compared, this is a ${res.mode} run.`];
  const machine = base.machine?.model === res.machine?.model ? '' : ` The baseline ran on another CPU (${res.machine?.model} here); ratios travel between machines better than absolute figures, not perfectly.`;
  return [
    `${head}: Sam/bare ratios then and now; a ratio worse by more than 10% is marked. Two runs of the same code on one machine have differed by more than that (bench/README.md, "Current figures"): a mark asks for more runs, it does not decide.${machine}`,
    '',
    '| Sam/bare | baseline | this run | change |',
    '|---|---:|---:|---|',
    ...comparison.map((c) => `| ${c.ratio} | ${fmt(c.baseline, 2)} | ${fmt(c.now, 2)} | ${c.changePct === null ? '—' : `${c.changePct > 0 ? '+' : ''}${c.changePct}%${c.worseBy10Pct ? ' **worse by > 10%**' : ''}`} |`),
  ];
}

const sec = (ms) => (typeof ms === 'number' ? Math.round(ms / 100) / 10 : null);
/** Every step of the two-node check ("<sockets> / <ack p99>; …"); older results had one. */
const twoSteps = (x) => {
  const check = x.twoNodes?.capacityCheck;
  return check ? (check.steps ?? [check]).map((st) => `${st.sockets} / ${fmt(st.ack?.p99)}`).join('; ') : null;
};
const lostOf = (r) => (r ? `${r.lost} of ${r.expectedDeliveries}; ${r.unacked} of ${r.sent} updates unacked` : null);

function verdicts(s, b, { cap, perSocketKB, f1000, cpu, paired, rateText }) {
  const v = (target, measured, met) => ({ target, measured: measured ?? '—', met: measured === null || measured === undefined ? null : met });
  const sc = cap(s);
  const bc = cap(b);
  const hs = s.handshakes?.maxRateP99Under100;
  const hb = b.handshakes?.maxRateP99Under100;
  const f = f1000(s);
  // Not measured when either fan-out ran no rate (`fanout` records null) or did not run.
  const sCap = s.fanout?.capacityPerSec;
  const bCap = b.fanout?.capacityPerSec;
  const two = s.twoNodes?.capacityCheck;
  const lg = s.logins;
  const rm = s.reminders;
  const cpuVerdict = (what, key) => {
    const r = ratio(cpu.sam[key], cpu.bare[key]);
    // The paired rounds' ratio, when the run had them, is shown beside the phase's: the same ratio, with drift shared.
    const p = paired?.[key];
    const alongside = p?.ratio ? `; paired rounds ${fmt(p.ratio, 2)}× (median of ${pairsText(p)}, ${fmt(p.min, 2)}–${fmt(p.max, 2)})` : p?.incomplete ? `; paired rounds: all ${p.incomplete} left out, work lost` : '';
    return v(`CPU per ${what} ≤ ${CPU_TARGETS[key]}× bare (server + PostgreSQL + Redis)`, r === null ? null : `${fmt(r, 2)}× (${fmt(cpu.sam[key], 3)} vs ${fmt(cpu.bare[key], 3)} ms)${alongside}`, r !== null && r <= CPU_TARGETS[key]);
  };
  return [
    v('≥ 18,000 sockets on one node, ack p99 ≤ 50 ms', sc, sc >= 18_000),
    v('≥ 0.9× bare sockets', bc ? ratio(sc, bc) : null, ratio(sc, bc) >= 0.9),
    v('≥ 36,000 sockets on two nodes, ack p99 ≤ 50 ms', two ? `${two.sockets} sockets, p99 ${two.ack?.p99} ms` : null, two ? two.sockets >= TWO_NODE_TARGET_SOCKETS && two.ack?.p99 <= 50 : false),
    v('≤ 25 KB RSS per socket', perSocketKB(s), perSocketKB(s) <= 25),
    v('≤ 1.5× bare RSS per socket', perSocketKB(b) ? ratio(perSocketKB(s), perSocketKB(b)) : null, ratio(perSocketKB(s), perSocketKB(b)) <= 1.5),
    v('≥ 1,000 handshakes/s (p99 ≤ 100 ms)', hs, hs >= 1_000),
    v('≥ 0.85× bare handshakes/s', hb ? ratio(hs, hb) : null, ratio(hs, hb) >= 0.85),
    v('18,000 sockets back within 30 s after a restart', s.reconnect ? `${s.reconnect.sockets} sockets, 99% in ${sec(s.reconnect.ms99)} s` : null, s.reconnect ? s.reconnect.sockets >= 18_000 && s.reconnect.ms99 !== null && s.reconnect.ms99 <= 30_000 : false),
    v('fan-out 1,000/s at full load, delivery p99 ≤ 50 ms', f ? `${f.achievedPerSec}/s, p99 ${f.delivery.p99} ms at ${s.fanoutSockets} sockets` : null, f ? f.achievedPerSec >= 950 && f.delivery.p99 <= 50 && s.fanoutSockets >= 18_000 : false),
    v('≥ 0.8× bare delivery capacity', typeof sCap === 'number' && typeof bCap === 'number' ? `${sCap} vs ${bCap}` : null, ratio(sCap, bCap) >= 0.8),
    v('nothing lost', f ? `${f.lost} lost, ${f.unacked} unacked` : null, f ? f.lost === 0 && f.unacked === 0 : false),
    v('relay: ≤ 2 ms added to first delta at p50', s.relay?.firstDeltaAddedMs?.p50, s.relay?.firstDeltaAddedMs?.p50 <= 2),
    v('relay: ≤ 15 ms added to first delta at p99', s.relay?.firstDeltaAddedMs?.p99, s.relay?.firstDeltaAddedMs?.p99 <= 15),
    cpuVerdict(`handshake at ${rateText}/s`, 'connect'),
    cpuVerdict(`task update (its write, 3 tabs) at ${rateText}/s`, 'update'),
    cpuVerdict('relayed delta', 'delta'),
    v('≥ 60 logins/s', lg?.achievedPerSec, lg?.achievedPerSec >= 60),
    v('socket ack p99 at most doubles during logins', lg ? `${lg.socketAckBefore?.p99} → ${lg.socketAckDuring?.p99} ms` : null, lg ? lg.socketAckDuring?.p99 <= 2 * lg.socketAckBefore?.p99 : false),
    v('reminders (Sam only): delivery lag p99 ≤ 5 s in every tab (REM-1)', rm ? `${rm.lagMs.p99} ms, ${rm.reminders} due within ${rm.spreadMs / 1000} s on two nodes` : null, rm ? rm.lagMs.p99 !== null && rm.lagMs.p99 <= 5_000 : false),
    v('reminders: none lost, none duplicated', rm ? `${rm.lost} lost, ${rm.duplicates} duplicated of ${rm.tabDeliveriesExpected} tab deliveries` : null, rm ? rm.lost === 0 && rm.duplicates === 0 && rm.tabDeliveriesExpected > 0 : false),
  ];
}
