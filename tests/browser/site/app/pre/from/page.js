// Prerender source: speculation rules ask Chromium to prerender /pre/to; the link to it is a
// plain <a> (a document navigation), so following it activates the prerendered page.
const rules = JSON.stringify({ prerender: [{ source: 'list', urls: ['/pre/to'] }] });

export default function PreFrom() {
  return (
    <main>
      <script type="speculationrules" dangerouslySetInnerHTML={{ __html: rules }} />
      <h1>Prerender source</h1>
      <a id="to-pre" href="/pre/to" style={{ display: 'block', padding: 20 }}>to the prerendered page</a>
    </main>
  );
}
