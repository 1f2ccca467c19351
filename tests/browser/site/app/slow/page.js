// A page whose button click handler blocks the main thread for about 300 ms (INP >= 200 ms).
import Buttons from './buttons';

export default function SlowPage() {
  return (
    <main>
      <h1>Slow click</h1>
      <Buttons />
    </main>
  );
}
