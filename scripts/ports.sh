# Sourced by the scripts that start clusters and servers for tests, so that `make test` (and `make bench`)
# never collide with another checkout's run on the same machine, nor with a developer's own cluster.
#
#   port_base      a base port derived from the checkout's folder: two checkouts start 10 ports apart
#                  or more, in 20000–31999 (below Linux's ephemeral range, so no client socket takes it)
#   pick_port V P  sets variable V to the first port from P upward that nothing listens on at 127.0.0.1
#                  and that this shell has not handed out already (a variable, not $(...), so the
#                  shell remembers what it handed out)
# Expects $root to be the checkout's folder.

_ports_given=" "

port_base() {
  local h
  h=$(printf '%s' "$root" | cksum | cut -d' ' -f1)
  echo $((20000 + (h % 1200) * 10))
}

_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  # _pick_port_p, not p: a local of a common name would hide a caller's variable of that name, and
  # printf -v would then set the local (pick_port p 5432 would set nothing the caller sees).
  local _pick_port_p=$2
  while [[ $_ports_given == *" $_pick_port_p "* ]] || _port_in_use "$_pick_port_p"; do
    _pick_port_p=$((_pick_port_p + 1))
    [ "$_pick_port_p" -lt 65000 ] || { echo "ports.sh: no free port from $2 up" >&2; return 1; }
  done
  _ports_given="$_ports_given$_pick_port_p "
  printf -v "$1" '%s' "$_pick_port_p"
}
