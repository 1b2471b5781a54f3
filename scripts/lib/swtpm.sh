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

# provision_swtpm DIR: a TPM state in DIR/state with an EK certificate (and a
# platform certificate) issued by a local CA in DIR/ca, as swtpm_setup makes
# them; SHA-256 PCR bank only.
provision_swtpm() {
  mkdir -p "$1/state" "$1/ca"
  printf 'statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\ncertserial = %s/certserial\n' "$1/ca" "$1/ca" "$1/ca" "$1/ca" > "$1/ca/localca.conf"
  printf -- '--platform-manufacturer provenix-demo\n--platform-version 2.1\n--platform-model swtpm\n' > "$1/ca/localca.options"
  printf 'create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = %s/localca.conf\ncreate_certs_tool_options = %s/localca.options\nactive_pcr_banks = sha256\n' "$1/ca" "$1/ca" > "$1/ca/swtpm_setup.conf"
  swtpm_setup --tpm2 --tpmstate "$1/state" --create-ek-cert --create-platform-cert --config "$1/ca/swtpm_setup.conf" --overwrite --logfile "$1/setup.log" >/dev/null
}
