// bfcache test page (static, so it is cacheable and eligible for the back/forward cache).
export default function One() {
  return (
    <main>
      <h1>Page one</h1>
      <a id="to-two" href="/bf/two">to two (full navigation)</a>
    </main>
  );
}
