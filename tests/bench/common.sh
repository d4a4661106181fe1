# Shared by bench.sh and soak.sh (sourced, not run): a release build, a seeded corpus kept in
# target/NAME/ and reused by later runs, its archivable lines, and a replay server on it.
# The sourcing script sets: name, n_events, corpus_seed, and may set corpus_args (STEP_MS
# LATE_MS of make_recentchange.py).
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
work="$root/target/$name"
mkdir -p "$work"
bin="$root/target/release/wikistream-archiver"
# The release build (the same binary as `cargo build --release`).
CARGO_TERM_QUIET=true make -s --no-print-directory release
corpus_args=${corpus_args:-}
corpus="$work/corpus-$n_events$(printf '%s' "$corpus_args" | tr ' ' '-' | sed 's/^./-&/').ndjson"
if [ ! -s "$corpus" ]; then
    echo "generating $n_events events (seed $corpus_seed, reused next time) ..." >&2
    # shellcheck disable=SC2086 # the arguments are words
    python3 fixtures/make_recentchange.py "$n_events" "$corpus_seed" $corpus_args > "$corpus.tmp"
    mv "$corpus.tmp" "$corpus"
fi
grep -v '"domain":"canary"' "$corpus" > "$work/expected.ndjson"

serve_pid=
stop_serve() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null
    serve_pid=
    return 0
}

# start_serve FLAGS...: (re)starts serve on the corpus, logging to $work/serve.log; sets $port.
start_serve() {
    stop_serve
    "$bin" serve --input "$corpus" "$@" > "$work/serve.out" 2> "$work/serve.log" &
    serve_pid=$!
    for _ in $(seq 600); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
    port=$(sed -n 's/^listening on 127.0.0.1://p' "$work/serve.out")
    [ -n "$port" ] || { echo "serve did not start: $(cat "$work/serve.log")" >&2; exit 1; }
}
