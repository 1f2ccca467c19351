'use client';
// #slow blocks for 300 ms in its click handler; #fast does a little work; the input takes keys.
import { useState } from 'react';

const block = (ms) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

export default function Buttons() {
  const [n, setN] = useState(0);
  return (
    <div>
      <button id="slow" className="btn primary" onClick={() => { block(300); setN(n + 1); }}>slow</button>
      <button id="fast" className="btn" onClick={() => setN(n + 1)}>fast</button>
      <input id="field" onKeyDown={() => block(250)} />
      <p id="count">{n}</p>
    </div>
  );
}
