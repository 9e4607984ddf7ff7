# kbuild's bash session. It sources a build.config the way Android's build.sh
# does (from ROOT_DIR, with `set -a`, under `set -e`), then either prints
# variables back or runs one of the config's *_DEFCONFIG_CMDS.
#
# Inputs, all from the environment or the command line (never spliced in):
#   ROOT_DIR, KERNEL_DIR    as build.sh sets them (KERNEL_DIR relative)
#   KBUILD_CONFIG_FILE      absolute path of the build.config to source
#   KBUILD_WARNINGS         file that collects names of skipped commands
#   KBUILD_ACTION           "print": print the variables named by "$@"
#                           "run":   eval the variable named by KBUILD_RUN,
#                                    "$@" being the make arguments
#   OUT_DIR                 (run only) absolute output directory
set -e

kbuild_action=$KBUILD_ACTION
kbuild_args=("$@")

if [[ $kbuild_action == print ]]; then
    # The config's own output must not mix with the read-back: fd 3 carries
    # the read-back, anything the config prints goes to stderr.
    exec 3>&1 1>&2
fi

# A command that is neither on PATH nor a function: most likely a helper of
# Android's build/ tree that kbuild does not provide. Skip it, loudly.
command_not_found_handle() {
    printf '%s\n' "$1" >>"$KBUILD_WARNINGS"
    printf 'kbuild: warning: skipped `%s`: not a command on PATH nor a function; kbuild stands in only for check_defconfig of the Android build/ helpers\n' "$*" >&2
    return 0
}

# check_defconfig, as Android's build/ helpers mean it: `make savedefconfig`
# in OUT_DIR must give back exactly the DEFCONFIG file of the tree.
check_defconfig() {
    local arch_dir=$ARCH
    case $ARCH in
    x86_64 | i386) arch_dir=x86 ;;
    esac
    local wanted=$KERNEL_DIR/arch/$arch_dir/configs/$DEFCONFIG
    if [[ ! -f $wanted ]]; then
        wanted=$OUT_DIR/arch/$arch_dir/configs/$DEFCONFIG
    fi
    if [[ ! -f $wanted ]]; then
        printf 'check_defconfig: no file %s under %s/arch/%s/configs nor under %s: point DEFCONFIG at a defconfig file or drop check_defconfig\n' \
            "$DEFCONFIG" "$KERNEL_DIR" "$arch_dir" "$OUT_DIR" >&2
        return 1
    fi
    make -C "$KERNEL_DIR" O="$OUT_DIR" "${kbuild_args[@]}" savedefconfig >&2
    if ! diff -u "$wanted" "$OUT_DIR/defconfig" >&2; then
        printf 'check_defconfig: make savedefconfig gave %s/defconfig, which differs from %s (diff above): update the defconfig or the config that changed it\n' \
            "$OUT_DIR" "$wanted" >&2
        return 1
    fi
}

cd "$ROOT_DIR"
set -a
# shellcheck disable=SC1090
. "$KBUILD_CONFIG_FILE"
set +a

case $kbuild_action in
print)
    for kbuild_name in "${kbuild_args[@]}"; do
        if [[ -v $kbuild_name ]]; then
            printf '%s\0%s\0' "$kbuild_name" "${!kbuild_name}" >&3
        fi
    done
    ;;
run)
    # kbuild decides the toolchain and hands it to make as arguments ("$@");
    # the config's own values stay shell variables but leave the
    # environment, or make would pick up LLVM=1 that kbuild had to drop.
    export -n LLVM CC LD CROSS_COMPILE KCFLAGS
    # Unquoted on purpose: build.sh runs `eval ${PRE_DEFCONFIG_CMDS}`.
    # shellcheck disable=SC2086
    eval ${!KBUILD_RUN}
    ;;
esac
