# Sourced by tests/engines/run.sh: start_garage DIR starts a one-node Garage (a real S3 server,
# installed by `make garage`) on free loopback ports with the bucket `wikistream` and a key,
# and exports AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and S3_ENDPOINT; stop_garage stops it.
garage_pid=
stop_garage() {
    [ -n "$garage_pid" ] && kill "$garage_pid" 2>/dev/null
    garage_pid=
    return 0
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_garage() {
    gdir=$1
    rm -rf "$gdir"
    mkdir -p "$gdir"
    s3_port=$(free_port) rpc_port=$(free_port) admin_port=$(free_port)
    cat > "$gdir/garage.toml" <<TOML
metadata_dir = "$gdir/meta"
data_dir = "$gdir/data"
db_engine = "lmdb"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
TOML
    g="garage -c $gdir/garage.toml"
    $g server > "$gdir/server.log" 2>&1 &
    garage_pid=$!
    for _ in $(seq 100); do $g status > "$gdir/status" 2>/dev/null && break; sleep 0.2; done
    node=$(awk '/^[0-9a-f]{16} / {print $1; exit}' "$gdir/status")
    $g layout assign -z dc1 -c 1G "$node" > /dev/null
    $g layout apply --version 1 > /dev/null
    $g bucket create wikistream > /dev/null
    $g key create engines-key > "$gdir/key"
    $g bucket allow --read --write --owner wikistream --key engines-key > /dev/null
    AWS_ACCESS_KEY_ID=$(sed -n 's/^Key ID: *//p' "$gdir/key")
    AWS_SECRET_ACCESS_KEY=$(sed -n 's/^Secret key: *//p' "$gdir/key")
    S3_ENDPOINT="127.0.0.1:$s3_port"
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3_ENDPOINT
}
