// Root layout of the test upstream: plain HTML, no fonts or CSS frameworks, so that every
// timing the browser tests compare comes from the page content itself.
export const metadata = { title: 'vitals-proxy test app', icons: { icon: '/dot.png' } };

export default function RootLayout({ children }) {
  return (
    <html lang="en">
      <body style={{ margin: 0, fontFamily: 'sans-serif' }}>{children}</body>
    </html>
  );
}
