# Sourced by .ci/run and ci/test.sh. `stage NAME CMD...` runs CMD and prints
# its wall time, whether it passed or failed, as `== stage: NAME took N s`.
stage() {
    local name=$1 start=$SECONDS status=0
    shift
    echo "== stage: $name"
    "$@" || status=$?
    if [ "$status" -eq 0 ]; then
        echo "== stage: $name took $((SECONDS - start)) s"
    else
        echo "== stage: $name took $((SECONDS - start)) s and FAILED (exit $status)"
    fi
    return "$status"
}
