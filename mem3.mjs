import * as fs from 'node:fs';
const rss=()=> (Number(fs.readFileSync('/proc/self/status','utf8').match(/VmRSS:\s+(\d+)/)[1])/1024).toFixed(0) + ' heap ' + (process.memoryUsage().heapUsed/1e6).toFixed(0) + ' ext ' + (process.memoryUsage().external/1e6).toFixed(0)+ ' ab ' + (process.memoryUsage().arrayBuffers/1e6).toFixed(0);
console.log('base', rss());
for (const m of process.argv.slice(2)) { await import(m); console.log(m, rss()); }
