# Sourced by entrypoint.sh and handler.sh: the stub's behaviour, read fresh on every call so that a test can
# change it on a running container.
#   /tmp/stub-mode (file in the container)   overrides everything when present: ok|unhealthy|fail-predict|crash|hang
#   MACHINE_LEARNING_STUB_MODE                the mode from the environment (default ok)
#   MACHINE_LEARNING_STUB_ONLY_VERSIONS       comma list; the environment mode applies only to these versions
stub_mode() {
    if [ -e /tmp/stub-mode ]; then
        mode=$(tr -d ' \r\n' < /tmp/stub-mode)
        echo "${mode:-ok}"
        return
    fi
    mode=${MACHINE_LEARNING_STUB_MODE:-ok}
    only=$(echo "${MACHINE_LEARNING_STUB_ONLY_VERSIONS:-}" | tr -d ' ')
    if [ -n "$only" ]; then
        case ",$only," in
            *",$IMMICH_SOURCE_REF,"*) ;;
            *) mode=ok ;;
        esac
    fi
    echo "$mode"
}
