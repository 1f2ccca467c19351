'use client';
// Inserts a 200 px banner 400 ms after hydration, pushing the content below it down.
import { useEffect, useState } from 'react';

export default function Shifter() {
  const [show, setShow] = useState(false);
  useEffect(() => {
    const t = setTimeout(() => setShow(true), 400);
    return () => clearTimeout(t);
  }, []);
  return show ? <div id="banner" style={{ height: 200, background: '#36c' }}>banner</div> : null;
}
