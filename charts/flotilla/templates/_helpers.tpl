{{/* Chart name, overridable. */}}
{{- define "flotilla.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name: the release name when it already contains the chart name. */}}
{{- define "flotilla.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Cluster-scoped objects carry the release namespace too: two releases of the chart in
different namespaces (e.g. one per team in namespaced mode) must not collide. */}}
{{- define "flotilla.clusterName" -}}
{{- printf "%s-%s" (include "flotilla.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flotilla.serviceAccountName" -}}
{{- default (include "flotilla.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "flotilla.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flotilla.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flotilla.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "flotilla.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The namespace the operator manages in namespaced mode; empty in cluster mode. */}}
{{- define "flotilla.watchNamespace" -}}
{{- if eq .Values.rbac.scope "namespace" -}}
{{- default .Release.Namespace .Values.watchNamespace -}}
{{- end -}}
{{- end -}}

{{/* Leader election is on whenever more than one replica runs: without it every replica
would write. A single replica may force it on (e.g. to keep the Lease across restarts). */}}
{{/* Whether the Microservices are split into shards, one Lease each (shards > 1). */}}
{{- define "flotilla.sharded" -}}
{{- if gt (int .Values.shards) 1 -}}true{{- end -}}
{{- end -}}

{{/* Replicas: with shards, at least one per shard. */}}
{{- define "flotilla.replicas" -}}
{{- if include "flotilla.sharded" . -}}{{ max (int .Values.replicas) (int .Values.shards) }}{{- else -}}{{ .Values.replicas }}{{- end -}}
{{- end -}}

{{/* One leader for everything; with shards each shard has its own Lease instead. */}}
{{- define "flotilla.leaderElect" -}}
{{- if and (not (include "flotilla.sharded" .)) (or (gt (int .Values.replicas) 1) .Values.leaderElection.enabled) -}}true{{- end -}}
{{- end -}}

{{/* The Leases the operator holds, in the release namespace: the leader's, or one per
shard. */}}
{{- define "flotilla.leaseNames" -}}
{{- if include "flotilla.sharded" . -}}
{{- range $i := until (int .Values.shards) }}{{ if $i }},{{ end }}{{ printf "%s-shard-%d" $.Values.leaderElection.leaseName $i | quote }}{{ end -}}
{{- else if include "flotilla.leaderElect" . -}}
{{ .Values.leaderElection.leaseName | quote }}
{{- end -}}
{{- end -}}

{{/* Whether the operator writes MicroserviceClass status (the counts of each class's users
and violations): classStatus when set, else the operator's own default, which is on only
when it watches every namespace (a namespaced operator sees only part of a class's users,
and two of them would overwrite each other's counts). Decides the --class-status flag
(deployment.yaml) and the patch on microserviceclasses/status (rbac.yaml). */}}
{{- define "flotilla.classStatus" -}}
{{- if kindIs "invalid" .Values.classStatus -}}
{{- if eq .Values.rbac.scope "cluster" -}}true{{- end -}}
{{- else if .Values.classStatus -}}true{{- end -}}
{{- end -}}

{{- define "flotilla.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* policy/v1 when the server serves it. A live server lists kinds ("policy/v1/PodDisruptionBudget");
`helm template`/`helm lint` offline list only group versions, and every one client-go
knows, so the server version also decides there (policy/v1 is served from 1.21). */}}
{{- define "flotilla.pdbApiVersion" -}}
{{- $served := or (.Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget") (.Capabilities.APIVersions.Has "policy/v1") -}}
{{- if and $served (semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version) -}}
policy/v1
{{- else -}}
policy/v1beta1
{{- end -}}
{{- end -}}

{{/* Checks that cannot be said in the JSON schema (they relate two values). */}}
{{- define "flotilla.validate" -}}
{{- if and (eq .Values.rbac.scope "cluster") .Values.watchNamespace -}}
{{- fail "watchNamespace is only valid with rbac.scope=namespace: a cluster-scoped install manages every namespace" -}}
{{- end -}}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) -}}
{{- fail "serviceAccount.create=false needs serviceAccount.name: the operator must run as an account that holds its RBAC" -}}
{{- end -}}
{{- end -}}

{{/* The operator's rules on MicroserviceClasses (cluster-scoped), in the ClusterRole of
either scope. Takes (dict "classStatus" "true"|""). */}}
{{- define "flotilla.classRules" -}}
# MicroserviceClasses: read, for each class's defaults, policy and exposure settings.
- apiGroups: [flotilla.dev]
  resources: [microserviceclasses]
  verbs: [list, watch]
{{- if .classStatus }}
# Class status (counts of users and violations), only when this operator writes it.
- apiGroups: [flotilla.dev]
  resources: [microserviceclasses/status]
  verbs: [patch]
{{- end }}
{{- end -}}
