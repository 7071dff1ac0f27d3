#!/usr/bin/env bash
# gpu_check.sh OUTDIR: gaia's GPU checks in one run of at most 8 minutes on one CUDA GPU (H100/H200).
#
#   a  train-supernet with --amp at 320 px against as many fp32 steps: steps/s, final losses, peak memory
#   c  finetune --freeze backbone against --freeze none (AR50 at 400 px): step time and peak memory ratios
#   d  elastic overhead: supernet path against its extracted static model, forward+backward time ratio
#   b  bench-latency: build a profile of this GPU, check it on 20 held-out random archs (MAPE)
#   e  benchmarks/bench_learning.py --device cuda --scale gpu, if it exists and takes those flags
#
# Every check drives the gaia CLI on toy data it makes with `gaia toy-data`, runs under its own time limit
# (and what is left of the total budget), and fails or times out without stopping the others.
# Writes OUTDIR/gpu_check.json (each check: figures, target, met; or skipped/failed/timed_out with the
# reason), OUTDIR/logs/CHECK.log, OUTDIR/latency-profile.json and latency-check.json (b), OUTDIR/learning.json
# (e); prints a table on stderr and the summary's path on stdout.
#
# Exit: 0 when every check that was not skipped ran to its end (a target not met is reported, not an
# error); 1 when one failed, timed out or was not reached; 2 bad usage; 130 interrupted.
#
# Without CUDA, only the elastic overhead runs (on the CPU, at toy sizes); the rest is skipped with the
# reason. Environment: GAIA_PYTHON (the python with gaia installed; default: the repository's .venv, else
# the python of `gaia` on PATH, else python3), GPU_CHECK_BUDGET_S (total seconds, default 480),
# GPU_CHECK_ONLY=a,c (run only these checks; the others are recorded as not run),
# GPU_CHECK_SMOKE=1 (no CUDA: every check at toy sizes on the CPU, to test this script),
# GPU_CHECK_KEEP_WORK=1 (keep OUTDIR/gpu_check_work: toy data, weights, step records).

set -u -o pipefail

usage() {
    cat <<'EOF'
usage: benchmarks/gpu_check.sh OUTDIR

Runs gaia's GPU checks (AMP supernet training, latency profile MAPE, frozen-backbone fine-tuning,
elastic overhead, bench_learning.py) within 8 minutes and writes OUTDIR/gpu_check.json.
Without CUDA it runs what it can on the CPU and says what it skipped.
EOF
}

if [ "$#" -eq 1 ] && { [ "$1" = "-h" ] || [ "$1" = "--help" ]; }; then
    usage
    exit 0
fi
if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "gpu_check.sh: expected one argument, the output folder" >&2
    usage >&2
    exit 2
fi
case "$1" in
    -*) echo "gpu_check.sh: unknown option $1 (the output folder must not start with -)" >&2; usage >&2; exit 2 ;;
esac

OUTDIR=$1
if [ -e "$OUTDIR" ] && [ ! -d "$OUTDIR" ]; then
    echo "gpu_check.sh: $OUTDIR exists and is not a folder" >&2
    exit 2
fi
mkdir -p -- "$OUTDIR" || { echo "gpu_check.sh: cannot create $OUTDIR" >&2; exit 2; }
OUTDIR=$(cd -- "$OUTDIR" && pwd)

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname -- "$HERE")
HELPER="$HERE/gpu_check.py"

BUDGET=${GPU_CHECK_BUDGET_S:-480}
case "$BUDGET" in
    ''|*[!0-9]*) echo "gpu_check.sh: GPU_CHECK_BUDGET_S must be a whole number of seconds" >&2; exit 2 ;;
esac
RESERVE=15      # seconds kept for the summary
KILL_GRACE=10   # a check that ignores SIGTERM is killed this long after its limit
MIN_LIMIT=20    # a check given less than this is not started
START=$SECONDS

say() { echo "[gpu_check] $*" >&2; }

# ------------------------------------------------------------------------------------------ which python
PY=${GAIA_PYTHON:-}
if [ -z "$PY" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then
        PY="$REPO/.venv/bin/python"
    elif command -v gaia >/dev/null 2>&1; then
        shebang=$(head -n 1 -- "$(command -v gaia)" 2>/dev/null || true)
        PY=${shebang#\#!}
        case "$PY" in */python*) ;; *) PY=python3 ;; esac
    else
        PY=python3
    fi
fi

rm -rf -- "$OUTDIR/checks" "$OUTDIR/gpu_check_work"
mkdir -p -- "$OUTDIR/checks" "$OUTDIR/logs"

INTERRUPTED=0
trap 'INTERRUPTED=1' INT TERM

# ------------------------------------------------------------------------------------------- environment
ENV_RESULT=$(cd -- "$REPO" && timeout -k 5 60 "$PY" "$HELPER" env "$OUTDIR" 2>"$OUTDIR/logs/env.log" </dev/null)
ENV_RC=$?
if [ "$ENV_RC" -ne 0 ]; then
    say "cannot run $PY $HELPER (exit $ENV_RC; see $OUTDIR/logs/env.log): set GAIA_PYTHON to gaia's python"
    printf '{"kind": "gaia/gpu-check", "schema_version": 1, "ok": false, "error": "the helper could not run (exit %d)", "checks": {}}\n' \
        "$ENV_RC" >"$OUTDIR/gpu_check.json"
    exit 1
fi
case "$ENV_RESULT" in
    cuda) MODE=gpu ;;
    cpu) if [ "${GPU_CHECK_SMOKE:-0}" = "1" ]; then MODE=smoke; else MODE=cpu; fi ;;
    *) MODE=broken ;;
esac
say "python $PY; mode $MODE (gpu: CUDA found; cpu: no CUDA, CUDA-only checks skipped; smoke: CPU test sizes)"
if [ "$MODE" = cpu ]; then
    say "no CUDA here (torch.cuda.is_available() is false): a, b, c and e are skipped; d runs on the CPU at toy sizes"
fi

# ------------------------------------------------------------------------------------------------ checks
# A check's record of how it ran (exit code, seconds, limit), read by the summary.
run_record() {  # name rc seconds limit [not_run reason]
    local reason=${5:-}
    if [ "$INTERRUPTED" = 1 ] && [ -z "$reason" ]; then
        printf '{"rc": %d, "seconds": %d, "limit_s": %d, "log": "logs/%s.log", "interrupted": true}\n' \
            "$2" "$3" "$4" "$1" >"$OUTDIR/checks/$1.run.json"
    elif [ -n "$reason" ]; then
        printf '{"rc": null, "seconds": 0, "limit_s": %d, "log": null, "not_run": "%s"}\n' "$4" "$reason" \
            >"$OUTDIR/checks/$1.run.json"
    else
        printf '{"rc": %d, "seconds": %d, "limit_s": %d, "log": "logs/%s.log"}\n' "$2" "$3" "$4" "$1" \
            >"$OUTDIR/checks/$1.run.json"
    fi
}

run_check() {  # letter name limit_seconds
    local letter=$1 name=$2 limit=$3 remaining t0 rc child
    if [ -n "${GPU_CHECK_ONLY:-}" ] && [[ ",$GPU_CHECK_ONLY," != *",$letter,"* ]]; then
        printf '{"rc": null, "seconds": 0, "limit_s": 0, "log": null, "skipped": "not in GPU_CHECK_ONLY=%s"}\n' \
            "$GPU_CHECK_ONLY" >"$OUTDIR/checks/$name.run.json"
        return
    fi
    if [ "$INTERRUPTED" = 1 ]; then
        run_record "$name" 0 0 0 "interrupted before it started"
        return
    fi
    if [ "$MODE" = broken ]; then
        run_record "$name" 0 0 0 "python, torch or gaia_cli could not be imported (see logs/env.log)"
        return
    fi
    remaining=$((BUDGET - RESERVE - KILL_GRACE - (SECONDS - START)))
    if [ "$limit" -gt "$remaining" ]; then limit=$remaining; fi
    if [ "$limit" -lt "$MIN_LIMIT" ]; then
        say "$letter $name: not run, the total budget of $BUDGET s is spent"
        run_record "$name" 0 0 "$limit" "the total budget of $BUDGET s was spent before it"
        return
    fi
    say "$letter $name: running (limit $limit s, log $OUTDIR/logs/$name.log)"
    t0=$SECONDS
    (cd -- "$REPO" && exec timeout -k "$KILL_GRACE" "$limit" "$PY" "$HELPER" check "$name" "$OUTDIR" --mode "$MODE") \
        >"$OUTDIR/logs/$name.log" 2>&1 </dev/null &
    child=$!
    wait "$child"
    rc=$?
    if [ "$INTERRUPTED" = 1 ]; then  # wait returns at once on a trapped signal: stop the check, then go on
        kill -TERM "$child" 2>/dev/null
        wait "$child"
        rc=$?
    fi
    run_record "$name" "$rc" "$((SECONDS - t0))" "$limit"
    case "$rc" in
        0) say "$letter $name: done in $((SECONDS - t0)) s" ;;
        124|137) say "$letter $name: stopped by its limit of $limit s (partial figures kept)" ;;
        *) say "$letter $name: exit $rc after $((SECONDS - t0)) s; last lines of its log:"
           tail -n 5 -- "$OUTDIR/logs/$name.log" | sed 's/^/    /' >&2 ;;
    esac
}

# The limits add up to more than the budget on purpose: a check may take longer than usual as long as the
# others do not; what is left of the budget caps every limit (e, last, gets what the others left).
# Measured on an H200 (2026-11-27, torch 2.11): a's AMP half took 51 s (start-up, toy data and CUDA
# initialisation dominate; 40 steps are 5 s), c's full fine-tuning half ~35 s after a ~30 s supernet, d got
# through 4 of its 6 path/format pairs in 90 s, b's profile build alone took 94 s. All five do not fit one
# 8-minute run: pick with GPU_CHECK_ONLY (e.g. a,c then b,d,e) where a session's device time is short.
#          letter name              limit (s)   measured / expected on an H200
run_check  a      amp_supernet      130       # ~105 s: 2 x (start-up + 40 steps of batch 8)
run_check  c      frozen_finetune   110       # ~75 s: a one-step R50 supernet, then 2 x 12 fine-tuning steps
run_check  d      elastic_overhead  140       # ~130 s: 3 ar50 paths x 2 memory formats x 12 steps x 2 models
run_check  b      latency_profile   220       # ~150 s: 357 blocks (94 s), then 20 whole-detector checks
run_check  e      learning          100

# ----------------------------------------------------------------------------------------------- summary
ELAPSED=$((SECONDS - START))
(cd -- "$REPO" && timeout -k 3 "$((RESERVE - 5))" "$PY" "$HELPER" summary "$OUTDIR" --mode "$MODE" --budget "$BUDGET" \
    --elapsed "$ELAPSED") </dev/null
RC=$?
if [ "${GPU_CHECK_KEEP_WORK:-0}" != "1" ]; then
    rm -rf -- "$OUTDIR/gpu_check_work"
fi
if [ "$INTERRUPTED" = 1 ]; then
    exit 130
fi
if [ "$RC" -ne 0 ]; then
    exit 1
fi
exit 0
