// 400 distinct image resources: the waterfall must hold them all, over several 48 KiB POSTs.
export default function Many() {
  const imgs = [];
  for (let i = 0; i < 400; i++)
    imgs.push(<img key={i} src={`/dot.png?i=${i}&pad=${'x'.repeat(200)}`} width="4" height="4" alt="" />);
  return (
    <main>
      <h1>Many resources</h1>
      <div>{imgs}</div>
    </main>
  );
}
