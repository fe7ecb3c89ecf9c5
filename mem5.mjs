import v8 from 'node:v8';
const show=(l)=>console.log(l, v8.getHeapSpaceStatistics().filter(s=>s.space_used_size>1e6).map(s=>`${s.space_name}=${(s.space_used_size/1e6).toFixed(0)}`).join(' '));
show('base');
await import('drizzle-orm/relations');
show('relations');
globalThis.gc();
show('gc');
const snap = v8.writeHeapSnapshot('/tmp/drz.heapsnapshot');
