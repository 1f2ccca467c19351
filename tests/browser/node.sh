# Sourced by the browser test scripts (sh). Next.js 16 needs Node.js 20.9 or newer; Debian 12's
# nodejs is 18. When the `node` on PATH is older (or VP_NODE_FROM_NPM=1), a Node.js 22 binary
# is installed from the npm registry (package node-linux-<arch>, the official build) into
# tests/browser/.node and put first on PATH, so npm and every script below run under it.
# Needs: npm, and $here set to tests/browser.
vp_node_version=22.23.3
vp_node_ok() {
    node -e 'const [a, b] = process.versions.node.split(".").map(Number);
             process.exit(a > 20 || (a === 20 && b >= 9) ? 0 : 1)' 2>/dev/null
}
if [ -n "${VP_NODE_FROM_NPM:-}" ] || ! vp_node_ok; then
    case $(uname -m) in
    x86_64) vp_node_arch=x64 ;;
    aarch64) vp_node_arch=arm64 ;;
    *) echo "not ok 1 - setup: Node.js >= 20.9 needed, and no npm build for $(uname -m)"; exit 1 ;;
    esac
    vp_node_dir="$here/.node/node_modules/node-linux-$vp_node_arch"
    if [ "$("$vp_node_dir/bin/node" --version 2>/dev/null)" != "v$vp_node_version" ]; then
        npm install --no-save --no-audit --no-fund --prefix "$here/.node" \
            "node-linux-$vp_node_arch@$vp_node_version" >"$here/.node.log" 2>&1 || {
            echo "not ok 1 - setup: installing Node.js $vp_node_version from npm failed"
            sed 's/^/  # /' "$here/.node.log" | tail -20
            exit 1
        }
    fi
    PATH="$vp_node_dir/bin:$PATH"
    export PATH
    vp_node_ok || { echo "not ok 1 - setup: Node.js from npm does not run"; exit 1; }
fi
