// A page with a deliberate layout shift: a banner is inserted above the content after paint.
import Shifter from './shifter';

export default function ShiftPage() {
  return (
    <main>
      <Shifter />
      <h1>Layout shift</h1>
      <div id="content" className="box big" style={{ height: 300, background: '#c33' }}>content</div>
    </main>
  );
}
