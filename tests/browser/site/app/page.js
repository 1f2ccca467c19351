// Home: a small heading paints first (FCP), then the large noisy image becomes the LCP element.
import Link from 'next/link';

export default function Home() {
  return (
    <main>
      <h1 className="title">Home</h1>
      <img id="hero" src="/hero.png" width="800" height="450" alt="noise" />
      <p><Link id="to-products" href="/products/42">Product 42</Link></p>
    </main>
  );
}
