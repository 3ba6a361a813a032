// The reference workload on Node's EventEmitter: `user_joined` with two string arguments;
// each listener adds both lengths to a counter. Prints one line per listener count:
//   peer=node callbacks=N ns_per_emit=X
// Usage: node node_emitter.js [emits per sample] [samples]
'use strict';
const { EventEmitter } = require('events');

const emits = Number(process.argv[2] || 2000000);
const samples = Number(process.argv[3] || 15);
let total = 0;

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

for (const n of [1, 3, 10]) {
  const emitter = new EventEmitter();
  for (let i = 0; i < n; i++) {
    emitter.on('user_joined', (name, email) => { total += name.length + email.length; });
  }
  const name = 'Ann';
  const email = 'ann@example.com';
  const work = emits * n * (name.length + email.length);
  for (let i = 0; i < emits; i++) emitter.emit('user_joined', name, email); // warm up the JIT
  const times = [];
  for (let s = 0; s < samples; s++) {
    // The counter restarts every sample so it stays a small integer: past 2^31, V8 boxes it
    // as a heap number and every listener would pay for that, which no peer does.
    total = 0;
    const start = process.hrtime.bigint();
    for (let i = 0; i < emits; i++) emitter.emit('user_joined', name, email);
    times.push(Number(process.hrtime.bigint() - start) / emits);
    if (total !== work) throw new Error(`listeners did ${total} units of work, expected ${work}`);
  }
  console.log(`peer=node callbacks=${n} ns_per_emit=${median(times).toFixed(2)}`);
}
