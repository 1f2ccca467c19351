// Next.js test upstream for the browser tests (tests/browser/run.sh builds and starts it).
export default { poweredByHeader: false, devIndicators: false };
