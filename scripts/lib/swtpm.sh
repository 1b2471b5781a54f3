# Shared by scripts/demo.sh and the benchmarks (source it): an swtpm on a
# free loopback port pair (server P, control P+1; swtpm needs both).

# Print a free port P whose P+1 is free too.
free_port_pair() {
  python3 -c 'import socket
for _ in range(50):
    s=socket.socket(); s.bind(("127.0.0.1",0)); p=s.getsockname()[1]; t=socket.socket()
    try:
        t.bind(("127.0.0.1",p+1)); print(p); break
    except OSError: pass
    finally: s.close(); t.close()'
}

# start_swtpm STATE_DIR PORT: start swtpm on that state (dies with this
# shell), wait for its control port, and set SWTPM_PID.
start_swtpm() {
  setpriv --pdeathsig KILL -- swtpm socket --tpm2 --server "type=tcp,port=$2,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$(($2 + 1)),bindaddr=127.0.0.1" --tpmstate "dir=$1" \
    --flags not-need-init,startup-clear & SWTPM_PID=$!
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$(($2 + 1))") 2>/dev/null && break; sleep 0.05; done
}
