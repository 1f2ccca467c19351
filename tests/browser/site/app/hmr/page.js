// HMR test page: tests/browser/hmr.mjs rewrites the text below in a copy of the app served by
// `next dev` and expects the open page to update over the HMR WebSocket, through the proxy.
export default function Hmr() {
  return (
    <main>
      <h1 id="hmr">version 1</h1>
    </main>
  );
}
