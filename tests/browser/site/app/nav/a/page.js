// Soft navigation source: a client-side Link to /nav/b.
import Link from 'next/link';

export default function A() {
  return (
    <main>
      <h1>Route A</h1>
      <Link id="to-b" href="/nav/b">to B</Link>
    </main>
  );
}
