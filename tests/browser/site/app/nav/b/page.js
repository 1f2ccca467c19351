// Soft navigation target: dynamic, so the client fetches its RSC payload on navigation.
import Link from 'next/link';
import Buttons from '../../slow/buttons';

export const dynamic = 'force-dynamic';

export default function B() {
  return (
    <main>
      <h1 id="b-title">Route B</h1>
      <Buttons />
      <Link id="to-a" href="/nav/a">to A</Link>
    </main>
  );
}
