// bfcache test: the page navigated to before going back.
export default function Two() {
  return (
    <main>
      <h1>Page two</h1>
    </main>
  );
}
