#!/bin/sh
# Makes development certificates for wsguard with openssl, like `wsguard demo` does in Java:
# a dev CA (ca.crt, ca.key) and a server certificate signed by it (server.crt, server.key)
# for localhost, 127.0.0.1 and ::1; EC P-256 keys, PKCS#8, valid 825 days.
#
#   certs/make-dev-certs.sh [DIR]      DIR defaults to certs/dev (git-ignored)
#
# Existing files are kept, so a CA you told your browser to trust stays the same; delete DIR to
# start over. Never commit what this writes: the CA key sits next to the certificates.
set -eu

dir=${1:-$(dirname "$0")/dev}
days=825
mkdir -p "$dir"
umask 077   # keys readable by their owner only

if [ -s "$dir/ca.crt" ] && [ -s "$dir/ca.key" ] && [ -s "$dir/server.crt" ] && [ -s "$dir/server.key" ]; then
    echo "dev certificates already in $dir (delete it to make new ones)"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -s "$dir/ca.crt" ] || [ ! -s "$dir/ca.key" ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key"
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" \
        -subj "/O=wsguard dev/CN=wsguard dev CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$dir/ca.crt"
fi

# genpkey writes PKCS#8 (BEGIN PRIVATE KEY), the form wsguard's docs show first.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/server.key"
openssl req -new -key "$dir/server.key" -subj "/O=wsguard dev/CN=localhost" -out "$tmp/server.csr"
cat > "$tmp/server.ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EXT
openssl x509 -req -in "$tmp/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -CAserial "$tmp/ca.srl" -sha256 -days "$days" -extfile "$tmp/server.ext" -out "$dir/server.crt" 2>/dev/null
chmod 644 "$dir/ca.crt" "$dir/server.crt"

echo "wrote $dir/ca.crt, ca.key, server.crt, server.key; trust ca.crt in your client"
