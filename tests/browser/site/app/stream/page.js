// A streaming page: the shell is sent first, the Suspense boundary's content 1.5 s later.
import { Suspense } from 'react';

export const dynamic = 'force-dynamic';

async function Late() {
  await new Promise((r) => setTimeout(r, 1500));
  return <p id="late" style={{ fontSize: 40 }}>Streamed content that arrived late, after the shell.</p>;
}

export default function StreamPage() {
  return (
    <main>
      <h1>Streaming</h1>
      <Suspense fallback={<p id="fallback">Loading…</p>}>
        <Late />
      </Suspense>
    </main>
  );
}
