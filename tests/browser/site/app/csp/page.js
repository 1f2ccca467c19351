// A page under a strict nonce-based CSP (set by ../../proxy.js); dynamic, as nonces require.
import { headers } from 'next/headers';

export default async function Csp() {
  const nonce = (await headers()).get('x-nonce');
  return (
    <main>
      <h1 id="csp" data-nonce-seen={nonce ? 'yes' : 'no'}>Strict CSP</h1>
      <img id="csp-img" src="/hero.png" width="400" height="225" alt="noise" />
    </main>
  );
}
