#!/usr/bin/env bash
# Posts portrange's results to a SQUAD server (LKFT's dashboard) through its
# submit API: one multipart POST per test run to
# $SQUAD_URL/api/submit/$SQUAD_GROUP/$SQUAD_PROJECT/BUILD/ENVIRONMENT with
# the Auth-Token header, fields `tests` (case -> pass/fail/skip), `metrics`,
# `metadata` and `attachment` files. Needs curl and jq (ci/scripts/deps.sh squad).
#   squad-submit.sh REPORT BUILD ENVIRONMENT [FILE...]
#       REPORT is a `run`/`vm --format json` report; FILEs (its KTAP, the
#       console log) are attached
#   squad-submit.sh SUMMARY BUILD
#       SUMMARY is a summary.json of `matrix` or `merge`: one test run per
#       kernel column, the column's label as ENVIRONMENT, the <label>.ktap
#       next to it attached, and "-<label>" added to the job_id (SQUAD
#       refuses a second run of one build with the same job_id)
# SQUAD reads only pass and fail as verdicts (anything else is a skip), so an
# error is submitted as fail, with "error: <reason>" as the test's log.
# Metrics: each phase's seconds (probes, cases; boot and vm for VM runs) and
# duration_seconds, the VM's whole life or else the phases' sum.
# Metadata: job_id ($SQUAD_JOB_ID, else CI_JOB_ID or GITHUB_RUN_ID), the
# kernel release and build, arch ($SQUAD_ARCH, else uname -m), the
# variants' profiles, the target, and build_config ($SQUAD_BUILD_CONFIG,
# e.g. a defconfig or build.config name) when set.
set -euo pipefail
usage() {
  echo "usage: $0 REPORT BUILD ENVIRONMENT [FILE...] | $0 SUMMARY BUILD" >&2
  exit 2
}
(($# >= 2)) || usage
for var in SQUAD_URL SQUAD_TOKEN SQUAD_GROUP SQUAD_PROJECT; do
  if [[ -z ${!var:-} ]]; then
    echo "$var is not set: SQUAD_URL, SQUAD_TOKEN, SQUAD_GROUP and SQUAD_PROJECT say where to submit" >&2
    exit 2
  fi
done
for tool in curl jq; do
  command -v "$tool" >/dev/null || {
    echo "$tool not found: run ci/scripts/deps.sh squad" >&2
    exit 2
  }
done
input=$1 build=$2
[[ -f $input ]] || {
  echo "$input not found: pass a --format json report or a summary.json" >&2
  exit 2
}
job_id=${SQUAD_JOB_ID:-${CI_JOB_ID:-${GITHUB_RUN_ID:-}}}
arch=${SQUAD_ARCH:-$(uname -m)}

# Submits the report on stdin as BUILD/ENVIRONMENT under JOB_ID (none:
# SQUAD makes one) with FILEs attached: submit ENVIRONMENT JOB_ID [FILE...]
submit() {
  local environment=$1 job_id=$2 report tests metrics metadata
  shift 2
  report=$(cat)
  tests=$(jq -c '[.results[] | {key: ("portrange/" + .name),
    value: (if .outcome == "error" then {result: "fail", log: ("error: " + .message)}
            elif .message != null then {result: .outcome, log: .message}
            else .outcome end)}] | from_entries' <<<"$report")
  metrics=$(jq -c '.phases | with_entries(select(.value != null)
    | {key: ("portrange/" + (.key | sub("_micros$"; "_seconds"))), value: (.value / 1e6)})
    | . + {"portrange/duration_seconds": (.["portrange/vm_seconds"] // ([.[]] | add // 0))}' <<<"$report")
  metadata=$(jq -c --arg job_id "$job_id" --arg arch "$arch" --arg config "${SQUAD_BUILD_CONFIG:-}" '{
      kernel_release: .probes.kernel, kernel_build: .probes.build, arch: $arch,
      profiles: .probes.profiles, target: .target}
    + (if $job_id != "" then {job_id: $job_id} else {} end)
    + (if $config != "" then {build_config: $config} else {} end)' <<<"$report")
  local attachments=()
  for file in "$@"; do attachments+=(-F "attachment=@$file"); done
  local url=${SQUAD_URL%/}/api/submit/$SQUAD_GROUP/$SQUAD_PROJECT/$build/$environment
  echo "submitting $(jq '.results | length' <<<"$report") results to $url"
  curl --silent --show-error --fail-with-body -H "Auth-Token: $SQUAD_TOKEN" \
    --form-string "tests=$tests" --form-string "metrics=$metrics" --form-string "metadata=$metadata" "${attachments[@]}" "$url"
  echo
}

if jq -e 'has("kernels")' "$input" >/dev/null; then
  (($# == 2)) || usage
  dir=$(dirname "$input")
  mapfile -t labels < <(jq -r '.kernels[].label' "$input")
  for i in "${!labels[@]}"; do
    label=${labels[$i]} files=()
    [[ -f $dir/$label.ktap ]] && files+=("$dir/$label.ktap")
    jq ".kernels[$i].report" "$input" | submit "$label" "${job_id:+$job_id-$label}" "${files[@]}"
  done
else
  (($# >= 3)) || usage
  submit "$3" "$job_id" "${@:4}" <"$input"
fi
