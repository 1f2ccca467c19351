// An API route (JSON, never injected).
export const dynamic = 'force-dynamic';

export function GET() {
  return Response.json({ ok: true, t: Date.now() });
}
