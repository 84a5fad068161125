# Sourced by .ci/run and ci/test.sh. `stage NAME CMD...` runs CMD and prints
# its wall time, whether it passed or failed, and the disk left where the
# builds go, as `== stage: NAME took N s (disk free: 7.1G)`.
free_disk() {
    local dir=${CARGO_TARGET_DIR:-.}
    [ -d "$dir" ] || dir=.
    df -h --output=avail "$dir" 2>/dev/null | tail -n 1 | tr -d ' ' || echo unknown
}
stage() {
    local name=$1 start=$SECONDS status=0
    shift
    echo "== stage: $name (disk free: $(free_disk))"
    "$@" || status=$?
    if [ "$status" -eq 0 ]; then
        echo "== stage: $name took $((SECONDS - start)) s (disk free: $(free_disk))"
    else
        echo "== stage: $name took $((SECONDS - start)) s and FAILED (exit $status; disk free: $(free_disk))"
    fi
    return "$status"
}
# `prune DIR`: under CI_PRUNE=1 (.ci/run sets it), remove a build folder
# no later stage reads.
prune() {
    if [ "${CI_PRUNE:-0}" = 1 ]; then
        rm -rf "$1"
        echo "== pruned $1 (disk free: $(free_disk))"
    fi
}
