// A dynamic route: /products/[id].
export default async function Product({ params }) {
  const { id } = await params;
  return (
    <main>
      <h1 id="product">Product {id}</h1>
    </main>
  );
}
