#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a bounded time: fuzz/run-all.sh [SECONDS]
# (default 60 per target). Prints a line per target with the executions done, and exits
# non-zero if any target crashed, hung (an input taking over 10 s) or ran out of memory;
# the input that did it is in fuzz/artifacts/<target>/.
#
# Toolchain: nightly when rustup has one; otherwise the stable toolchain with
# RUSTC_BOOTSTRAP=1, which lets stable take the -Z flags cargo-fuzz passes.
# FUZZ_TOOLCHAIN=stable|nightly picks one.
#
# Sanitizer: none by default. havip's crates forbid unsafe code, so AddressSanitizer can
# only find bugs in dependencies' unsafe code, and it makes the build half again as long
# and the runs about ten times slower: in a time-bounded run, ten times the executions
# find more. Panics, overflows (the build has overflow checks on), hangs and the 2 GiB
# memory bound are caught without it. FUZZ_SANITIZER=address turns it on, for longer runs.
#
# The committed corpus (fuzz/corpus/<target>) is read, never written: what a run finds
# goes to a scratch folder, so a run leaves the tree as it was.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-60}
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS]   (seconds per target, a whole number, default 60)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
    exit 2
fi

toolchain=${FUZZ_TOOLCHAIN:-}
if [[ -z "$toolchain" ]]; then
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        toolchain=nightly
    else
        toolchain=stable
    fi
fi
case "$toolchain" in
    nightly)
        cargo=(cargo +nightly)
        ;;
    stable)
        # cargo-fuzz passes -Z flags (sanitizer coverage options, -Zbuild-std is not
        # used); RUSTC_BOOTSTRAP=1 lets the stable compiler accept them.
        export RUSTC_BOOTSTRAP=1
        cargo=(cargo +stable)
        ;;
    *)
        echo "FUZZ_TOOLCHAIN must be nightly or stable, not $toolchain" >&2
        exit 2
        ;;
esac

sanitizer=${FUZZ_SANITIZER:-none}

# Fails if fuzz/Cargo.lock is not up to date, as --locked does for the main workspace.
"${cargo[@]}" fetch --locked --quiet

echo "fuzz: building the targets ($toolchain toolchain, sanitizer $sanitizer)"
build_start=$SECONDS
"${cargo[@]}" fuzz build --sanitizer "$sanitizer"
echo "fuzz: built in $((SECONDS - build_start)) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
for target in $("${cargo[@]}" fuzz list); do
    mkdir -p "$scratch/$target" "artifacts/$target"
    log="$scratch/$target.log"
    status=0
    # -timeout: one input taking longer is a hang. -rss_limit_mb: a run over 2 GiB is a
    # failure, not a big machine; -malloc_limit_mb (one allocation over 512 MiB) needs
    # the sanitizer's allocator hooks, so it holds with FUZZ_SANITIZER=address only.
    "${cargo[@]}" fuzz run --sanitizer "$sanitizer" "$target" \
        "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || true)
    if ((status == 0)); then
        echo "fuzz: $target: ok, ${execs:-?} executions in $seconds s"
    else
        failed+=("$target")
        echo "fuzz: $target: FAILED (exit $status) after ${execs:-?} executions; the end of its log:"
        tail -n 40 "$log" | sed 's/^/    /'
    fi
done

if ((${#failed[@]})); then
    echo "fuzz: failed: ${failed[*]}; reproduce with: cargo +$toolchain fuzz run <target> fuzz/artifacts/<target>/<file>" >&2
    exit 1
fi
echo "fuzz: all targets ok"
