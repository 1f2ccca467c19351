# Sourced by bench/h2.sh and bench/h2cost.sh (not run on its own): what both serve, so that the
# two benchmarks measure the same certificate and the same pages.
# h2_files DIR: DIR/cert.pem and DIR/key.pem (EC P-256, for localhost and 127.0.0.1),
# DIR/www/1k.bin (1 KiB of random bytes), DIR/www/page.html (the HTML rows' page) and DIR/logs.
h2_files() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
    mkdir -p "$1/www" "$1/logs"
    head -c 1024 /dev/urandom > "$1/www/1k.bin"
    {
        printf '<!doctype html><html><head><meta charset="utf-8"><title>bench</title></head><body>\n'
        i=0; while [ $i -lt 200 ]; do printf '<p>paragraph %d of the benchmark page</p>\n' $i; i=$((i+1)); done
        printf '</body></html>\n'
    } > "$1/www/page.html"
}
