# shellcheck shell=bash
# Certificates and kubeconfigs for the embedded cluster, made once per run dir with openssl.
# Sourced, never run.

PKI=$CLUSTER_DIR/pki

# cert NAME CN ORG SANS: a client/server certificate signed by the cluster CA.
cert() {
	local name=$1 cn=$2 org=$3 sans=$4
	[[ -f $PKI/$name.crt ]] && return
	local subj="/CN=$cn"
	[[ -n $org ]] && subj="/O=$org$subj"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" \
		-out "$PKI/$name.csr" 2>/dev/null
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=critical,digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=serverAuth,clientAuth"
		[[ -n $sans ]] && echo "subjectAltName=$sans"
	} >"$PKI/$name.ext"
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
		-CAcreateserial -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
	rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# kubeconfig FILE CERTNAME: a kubeconfig authenticating with a client certificate.
kubeconfig() {
	local file=$1 name=$2
	[[ -f $file ]] && return
	cat >"$file" <<KC
apiVersion: v1
kind: Config
clusters:
- name: flotilla
  cluster:
    certificate-authority: $PKI/ca.crt
    server: https://$HOST_IP:$APISERVER_PORT
users:
- name: $name
  user:
    client-certificate: $PKI/$name.crt
    client-key: $PKI/$name.key
contexts:
- name: flotilla
  context: {cluster: flotilla, user: $name}
current-context: flotilla
KC
}

make_pki() {
	mkdir -p "$PKI"
	chmod 700 "$PKI"
	if [[ ! -f $PKI/ca.crt ]]; then
		log "creating the cluster CA and certificates"
		openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -days 3650 \
			-subj "/CN=flotilla-ca" -addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
			-out "$PKI/ca.crt" 2>/dev/null
	fi
	if [[ ! -f $PKI/sa.key ]]; then
		openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
		openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
	fi
	cert apiserver kube-apiserver "" \
		"IP:$HOST_IP,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	# The API server's identity towards kubelets (logs, exec, port-forward).
	cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
	cert admin flotilla-admin system:masters ""
	cert controller-manager system:kube-controller-manager "" ""
	cert scheduler system:kube-scheduler "" ""
	cert kube-proxy system:kube-proxy "" ""
	cert kubelet "system:node:$NODE_NAME" system:nodes ""
	cert kubelet-serving "$NODE_NAME" "" "IP:$HOST_IP,IP:127.0.0.1,DNS:$NODE_NAME"
	kubeconfig "$KUBECONFIG_PATH" admin
	for n in controller-manager scheduler kube-proxy kubelet; do
		kubeconfig "$CLUSTER_DIR/$n.kubeconfig" "$n"
	done
	chmod 600 "$PKI"/*.key
}
