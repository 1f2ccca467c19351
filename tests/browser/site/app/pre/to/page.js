// Prerender target: loaded while hidden by the speculation rules of /pre/from, shown when the
// link is followed. Its paint metrics count from activation (activationStart), as in CrUX.
export default function PreTo() {
  return (
    <main>
      <h1 id="pre-title">Prerendered page</h1>
      <p id="pre-text" style={{ fontSize: 28, maxWidth: 900 }}>
        This page was prerendered. Its largest paint happens when it is activated, and the beacon
        reports every paint and first-byte time relative to that moment.
      </p>
    </main>
  );
}
