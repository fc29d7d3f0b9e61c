#!/usr/bin/env bash
# tools/local_slurm.sh start|stop|status|restart
#
# A single-node Slurm cluster on this machine, for tests and CI: munge, (MariaDB + slurmdbd for
# sacct), slurmctld, slurmd, and fake GPUs declared as GRES. No systemd needed.
# Debian 12 (bookworm): slurm-wlm 22.05, munge 0.5.15, mariadb 10.11. Must run as root.
#
#   start    install missing packages (apt-get), write the config, start what is not running,
#            wait until the node is idle. Idempotent: a second start does nothing (0.1 s). If the
#            generated config differs from the one in /etc/slurm while our daemons run,
#            slurmctld and slurmd are restarted (running jobs survive).
#   stop     cancel all jobs (unless SLURM_LOCAL_KEEP_JOBS=1), then stop exactly the daemons this
#            script started, by the PIDs in its PID files (never by name), in reverse order.
#   status   print the daemons (from the PID files) and sinfo; exit 0 only if slurmctld answers
#            and the node is usable (idle, mixed or allocated).
#   restart  stop, then start.
#
# Partitions: debug (default, MaxTime=INFINITE) and short (MaxTime=10 minutes), same node.
#
# Environment knobs (all optional):
#   SLURM_LOCAL_ACCOUNTING=1   1: slurmdbd + MariaDB (sacct works); 0: no accounting (sacct fails).
#   SLURM_LOCAL_ENFORCE=limits AccountingStorageEnforce with accounting (QOS and association
#                              limits hold, as on most real clusters); empty: not enforced.
#   SLURM_LOCAL_GPUS=4         fake GPUs declared as GRES (gpu:N); 0 disables GRES.
#   SLURM_LOCAL_CPUS=<n>       CPUs to advertise (default: max(8, real count)). More than the real
#                              count over-subscribes the cores (config_overrides): more 1-CPU jobs
#                              run at once, which helps the throughput of small test jobs.
#   SLURM_LOCAL_MEM_MB=<n>     RealMemory to advertise (default: 90% of slurmd -C).
#   SLURM_LOCAL_NODE=<name>    node name (default: hostname -s); need not resolve.
#   SLURM_LOCAL_SHORT_MIN=10   MaxTime (minutes) of the 'short' partition.
#   SLURM_LOCAL_CLEAN_STATE=0  1: wipe slurmctld state (job ids restart at 1) and the accounting DB
#                              before starting them (only for daemons not already running).
#   SLURM_LOCAL_KEEP_JOBS=0    stop: 1 leaves queued/running jobs alone.
#   SLURM_LOCAL_RUN=/run/slurm-local   PID files and fake GPU devices.
#   SLURM_LOCAL_TIMEOUT=60     seconds to wait for each daemon / the idle node.
set -euo pipefail

ACCOUNTING=${SLURM_LOCAL_ACCOUNTING:-1}
ENFORCE=${SLURM_LOCAL_ENFORCE-limits}
NGPUS=${SLURM_LOCAL_GPUS:-4}
RUN=${SLURM_LOCAL_RUN:-/run/slurm-local}
TIMEOUT=${SLURM_LOCAL_TIMEOUT:-60}
CLEAN=${SLURM_LOCAL_CLEAN_STATE:-0}
SHORT_MIN=${SLURM_LOCAL_SHORT_MIN:-10}
NODE=${SLURM_LOCAL_NODE:-$(hostname -s)}
# slurmctld insists that SlurmctldHost equals this machine's hostname ("This host (x/y) not a
# valid controller"); the address in parentheses means it need not resolve in DNS.
CTLD_HOST=$(hostname -s)
CONF=/etc/slurm
LOG=/var/log/slurm
DBPASS=slurmlocalpw
# start order; stop goes in reverse
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)

t_start=$(date +%s.%N)
log() { printf '[local_slurm %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed() { awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

# pid_of NAME: print the PID recorded in $RUN/NAME.pid if that process lives and its comm is NAME
# (all our daemons' comm equals their name)
pid_of() {
  local f="$RUN/$1.pid" pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}
is_running() { pid_of "$1" >/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() {  # wait_for DESCRIPTION CMD...
  local what=$1; shift
  local end=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timed out waiting for $what"
    sleep 0.1
  done
}
# launch NAME CMD... : start CMD in its own session (no inherited stdio), record its PID
launch() {
  local name=$1; shift
  setsid "$@" </dev/null >>"$LOG/slurm-local-$name.out" 2>&1 &
  local pid=$!
  echo "$pid" > "$RUN/$name.pid"
  sleep 0.2
  if ! is_running "$name"; then
    tail -20 "$LOG/slurm-local-$name.out" >&2 || true
    die "$name (pid $pid) did not stay up; see $LOG/slurm-local-$name.out"
  fi
  log "started $name pid $pid"
}
# stop_daemon NAME: SIGTERM the PID of our PID file, SIGKILL after 15 s
stop_daemon() {
  local pid
  if pid=$(pid_of "$1"); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
    if [ -d "/proc/$pid" ]; then log "$1 pid $pid ignored SIGTERM for 15 s; SIGKILL"; kill -9 "$pid" 2>/dev/null || true; fi
    log "stopped $1 pid $pid"
  elif [ -e "$RUN/$1.pid" ]; then
    log "$1: stale pid file (process gone or not ours); removed"
  fi
  rm -f "$RUN/$1.pid"
}
# refuse to fight with daemons that we did not start
check_port_free() {  # NAME PORT
  if ! is_running "$1" && port_open "$2"; then
    die "port $2 is already in use by a process not started by this script (another $1?)"
  fi
}
node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }

# ================================================================ start
do_start() {
  [ "$(id -u)" = 0 ] || die "must run as root"

  # ---------------------------------------------------------------- 1. install
  local PKGS=(slurmctld slurmd slurm-client munge)
  local BINS=(/usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/sbin/munged)
  if [ "$ACCOUNTING" = 1 ]; then
    PKGS+=(slurmdbd mariadb-server)
    BINS+=(/usr/sbin/slurmdbd /usr/sbin/mariadbd)
  fi
  local missing=0 b
  for b in "${BINS[@]}"; do [ -x "$b" ] || missing=1; done
  if [ "$missing" = 1 ]; then
    log "installing ${PKGS[*]}"
    # keep the packages' maintainer scripts from starting daemons (no systemd here)
    local own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local ok=1
    if ! apt-get install -y -q --no-install-recommends "${PKGS[@]}" >/tmp/local_slurm_apt.log 2>&1; then
      apt-get update -q >>/tmp/local_slurm_apt.log 2>&1 || true
      apt-get install -y -q --no-install-recommends "${PKGS[@]}" >>/tmp/local_slurm_apt.log 2>&1 || ok=0
    fi
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$ok" = 1 ] || { tail -20 /tmp/local_slurm_apt.log >&2; die "apt-get install failed (log: /tmp/local_slurm_apt.log)"; }
    log "installed in $(elapsed)s"
  fi

  mkdir -p "$RUN" "$LOG" /run/munge /run/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd "$CONF"
  chown munge:munge /run/munge; chmod 755 /run/munge
  chown slurm:slurm /run/slurm /var/lib/slurm/slurmctld "$LOG"

  # ---------------------------------------------------------------- 2. munge
  if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key; chmod 700 /etc/munge; chmod 600 /etc/munge/munge.key
  if ! is_running munged; then
    # munged forks itself; it must run as user munge (owner of the key)
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged || die "munged failed; see /var/log/munge/munged.log"
    wait_for "munged pid file" test -s /run/munge/munged.pid
    cp /run/munge/munged.pid "$RUN/munged.pid"
    log "started munged pid $(cat "$RUN/munged.pid")"
  fi
  wait_for "munge round trip" bash -c 'munge -n | unmunge'

  # ---------------------------------------------------------------- 3. config
  local HW
  read -r -a HW <<<"$(slurmd -C | head -1)"
  hw() { local k=$1 kv; for kv in "${HW[@]}"; do [ "${kv%%=*}" = "$k" ] && { echo "${kv#*=}"; return; }; done; }
  local REAL_CPUS REAL_MEM CPUS MEM NODE_HW OVERRIDES
  REAL_CPUS=$(hw CPUs); REAL_MEM=$(hw RealMemory)
  CPUS=${SLURM_LOCAL_CPUS:-$(( REAL_CPUS > 8 ? REAL_CPUS : 8 ))}
  MEM=${SLURM_LOCAL_MEM_MB:-$(( REAL_MEM * 9 / 10 ))}
  if [ "$CPUS" = "$REAL_CPUS" ]; then
    NODE_HW="CPUs=$CPUS Boards=$(hw Boards) SocketsPerBoard=$(hw SocketsPerBoard) CoresPerSocket=$(hw CoresPerSocket) ThreadsPerCore=$(hw ThreadsPerCore)"
    OVERRIDES=""
  else
    NODE_HW="CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1"
    OVERRIDES="SlurmdParameters=config_overrides"
  fi

  local GRES_LINES="" NODE_GRES="" i f
  if [ "$NGPUS" -gt 0 ]; then
    # gres/gpu drops entries without File=, and warns unless File= is a device:
    # make N character devices (same numbers as /dev/null) to stand for GPUs.
    for i in $(seq 0 $((NGPUS - 1))); do
      f="$RUN/fakegpu$i"
      [ -c "$f" ] || { rm -f "$f"; mknod -m 666 "$f" c 1 3 2>/dev/null || touch "$f"; }
    done
    GRES_LINES="GresTypes=gpu"
    NODE_GRES="Gres=gpu:$NGPUS"
    printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s/fakegpu[0-%d]\n' "$NODE" "$RUN" $((NGPUS - 1)) > "$CONF/gres.conf.new"
  else
    : > "$CONF/gres.conf.new"
  fi

  local ACCT
  if [ "$ACCOUNTING" = 1 ]; then
    ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
AccountingStorageTRES=gres/gpu
${ENFORCE:+AccountingStorageEnforce=$ENFORCE}
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30"
  else
    ACCT="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
  fi

  cat > "$CONF/slurm.conf.new" <<EOF
# generated by tools/local_slurm.sh -- single-node local cluster
ClusterName=localcluster
SlurmctldHost=$CTLD_HOST(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
# cred_expire also sets how long a requeued job waits before it may start again (default 120 s)
AuthInfo=cred_expire=10
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1
ReturnToService=2
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SlurmctldPort=6817
SlurmdPort=6818
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
MinJobAge=300
$ACCT
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.log
$GRES_LINES
$OVERRIDES
NodeName=$NODE NodeAddr=127.0.0.1 $NODE_HW RealMemory=$MEM $NODE_GRES State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=ALL Default=NO MaxTime=$SHORT_MIN State=UP
EOF

  local changed=0
  for f in slurm.conf gres.conf; do
    if ! cmp -s "$CONF/$f.new" "$CONF/$f"; then mv "$CONF/$f.new" "$CONF/$f"; changed=1; else rm -f "$CONF/$f.new"; fi
    chmod 644 "$CONF/$f"
  done
  if [ "$changed" = 1 ] && { is_running slurmd || is_running slurmctld; }; then
    # new config: restart what runs (by our PIDs); running jobs survive a restart
    log "config changed: restarting slurmd and slurmctld"
    stop_daemon slurmd; stop_daemon slurmctld
  fi

  # ---------------------------------------------------------------- 4. accounting
  if [ "$ACCOUNTING" = 1 ]; then
    if ! is_running mariadbd; then
      check_port_free mariadbd 3306
      mkdir -p /run/mysqld; chown mysql:root /run/mysqld
      [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
      launch mariadbd /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1
    fi
    wait_for "mariadb" mariadb-admin ping
    if [ "$CLEAN" = 1 ] && ! is_running slurmdbd; then
      # job ids restart at 1 after a state wipe: drop old accounting rows too, or sacct -j N
      # would return rows of several different jobs N
      mariadb -e "DROP DATABASE IF EXISTS slurm_acct_db;"
    fi
    # CREATE USER IF NOT EXISTS keeps an old password: ALTER it too, or slurmdbd retries forever
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
      CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
      ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
    local old_umask; old_umask=$(umask); umask 077
    cat > "$CONF/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=slurm
DebugLevel=info
LogFile=$LOG/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DBPASS
EOF
    umask "$old_umask"
    chown slurm:slurm "$CONF/slurmdbd.conf"; chmod 600 "$CONF/slurmdbd.conf"   # slurmdbd refuses other modes
    if ! is_running slurmdbd; then
      check_port_free slurmdbd 6819
      launch slurmdbd /usr/sbin/slurmdbd -D
    fi
    wait_for "slurmdbd port 6819" port_open 6819
  fi

  # ---------------------------------------------------------------- 5. slurmctld + slurmd
  if ! is_running slurmctld; then
    check_port_free slurmctld 6817
    if [ "$CLEAN" = 1 ]; then find /var/lib/slurm/slurmctld -mindepth 1 -delete; fi
    launch slurmctld /usr/sbin/slurmctld -D
  fi
  wait_for "slurmctld (scontrol ping)" bash -c 'scontrol ping | grep -q "is UP"'
  if ! is_running slurmd; then
    check_port_free slurmd 6818
    launch slurmd /usr/sbin/slurmd -D -N "$NODE"
  fi

  local end st
  end=$(( $(date +%s) + TIMEOUT ))
  while :; do
    st=$(node_state)
    case "$st" in
      idle|mixed|allocated) break ;;
      drain*|down*|inval*|fail*)
        # stale DOWN/DRAIN reasons from an earlier config survive in the state files
        scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true ;;
    esac
    [ "$(date +%s)" -lt "$end" ] || { sinfo -R >&2; die "node $NODE not idle (state '$st')"; }
    sleep 0.2
  done
  if [ "$ACCOUNTING" = 1 ] && [ -n "$ENFORCE" ]; then
    # with limits enforced a job needs an association: slurmctld registers the cluster (and
    # root's association) in slurmdbd when it first starts, and must have loaded it
    wait_for "root's association" bash -c \
      'scontrol show assoc_mgr users=root flags=assoc 2>/dev/null | grep -q "UserName=root"'
  fi
  log "cluster ready in $(elapsed)s: node $NODE state $st, CPUs=$CPUS mem=${MEM}M gpus=$NGPUS accounting=$ACCOUNTING"
  sinfo
}

# ================================================================ stop
do_stop() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  # 1. cancel jobs and wait for their processes to go (only if our slurmctld runs), or
  #    slurmstepd and job processes would outlive slurmd
  if [ "${SLURM_LOCAL_KEEP_JOBS:-0}" != 1 ] && is_running slurmctld; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ' || true)
    if [ -n "${jobs// }" ]; then
      log "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 1 150); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
    fi
  fi
  # 2. stop daemons in reverse start order
  local i
  for (( i=${#DAEMONS[@]}-1; i>=0; i-- )); do stop_daemon "${DAEMONS[$i]}"; done
  log "stopped in $(elapsed)s"
}

# ================================================================ status
do_status() {
  local name pid any=0
  for name in "${DAEMONS[@]}"; do
    if pid=$(pid_of "$name"); then printf '%-10s running  pid %s\n' "$name" "$pid"; any=1
    elif [ -e "$RUN/$name.pid" ]; then printf '%-10s DEAD     (stale pid file %s)\n' "$name" "$RUN/$name.pid"
    else printf '%-10s stopped\n' "$name"; fi
  done
  [ "$any" = 1 ] || echo "(no daemon started by tools/local_slurm.sh is running)"
  if ! command -v sinfo >/dev/null; then echo "sinfo: not installed"; return 1; fi
  if ! timeout 15 scontrol ping 2>/dev/null | grep -q "is UP"; then echo "slurmctld: not answering"; return 1; fi
  timeout 15 sinfo || return 1
  local st; st=$(node_state)
  case "$st" in
    idle|mixed|allocated) echo "node $NODE: $st"; return 0 ;;
    *) echo "node $NODE: not usable (state '${st:-none}')"; sinfo -R 2>/dev/null || true; return 1 ;;
  esac
}

case "${1:-}" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  restart) do_stop; t_start=$(date +%s.%N); do_start ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
