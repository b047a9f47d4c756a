{{/*
Names and labels. The define names agentEnv.name, agentEnv.fullname, agentEnv.labels and
agentEnv.selectorLabels are part of the chart's interface: additionalResources written for
the k8s sandbox's chart use them, so they keep their names and output format.
*/}}

{{/* The chart's short name: "agent-env" unless global.nameOverride is set. */}}
{{- define "agentEnv.name" -}}
{{- $g := .Values.global | default dict -}}
{{- $g.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name: "agent-env-<release>" (just the release name when it
already contains the chart name), or global.fullnameOverride. */}}
{{- define "agentEnv.fullname" -}}
{{- $g := .Values.global | default dict -}}
{{- if $g.fullnameOverride -}}
{{- $g.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $short := include "agentEnv.name" . -}}
{{- if contains $short .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" $short .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Value of the helm.sh/chart label. */}}
{{- define "agentEnv.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The two labels that select every pod of the release. */}}
{{- define "agentEnv.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentEnv.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* A map of strings from the `labels` value: label and annotation values must be
strings, and --set may have turned "123" or "true" into a number or a boolean. */}}
{{- define "agentEnv.stringMap" -}}
{{- $out := dict -}}
{{- range $k, $v := . -}}
{{- $_ := set $out (toString $k) (ternary "" (toString $v) (kindIs "invalid" $v)) -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Labels of every object: the user's `labels`, then the chart's own (which win). */}}
{{- define "agentEnv.labelMap" -}}
{{- $l := include "agentEnv.stringMap" (.Values.labels | default dict) | fromJson -}}
{{- $_ := set $l "helm.sh/chart" (include "agentEnv.chart" .) -}}
{{- $_ = set $l "app.kubernetes.io/name" (include "agentEnv.name" .) -}}
{{- $_ = set $l "app.kubernetes.io/instance" .Release.Name -}}
{{- $_ = set $l "app.kubernetes.io/managed-by" .Release.Service -}}
{{- if .Chart.AppVersion -}}
{{- $_ = set $l "app.kubernetes.io/version" .Chart.AppVersion -}}
{{- end -}}
{{- toJson $l -}}
{{- end -}}

{{/* The labels of every object, as YAML lines (for nindent). */}}
{{- define "agentEnv.labels" -}}
{{- include "agentEnv.labelMap" . | fromJson | toYaml -}}
{{- end -}}

{{/* metadata.labels and metadata.annotations of an object. Argument: (list $ extraLabels)
where extraLabels is a dict of more labels (or nil). */}}
{{- define "agentEnv.metadata" -}}
{{- $root := index . 0 -}}
{{- $l := include "agentEnv.labelMap" $root | fromJson -}}
{{- with index . 1 }}{{ $l = merge (deepCopy .) $l }}{{ end -}}
labels:
  {{- toYaml $l | nindent 2 }}
{{- $a := include "agentEnv.stringMap" ($root.Values.annotations | default dict) | fromJson }}
{{- with $a }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Whether a service gets a headless Service and a name in the sandbox's DNS:
"true" or "". Argument: the service's values. */}}
{{- define "agentEnv.hasDnsRecord" -}}
{{- if or .dnsRecord .additionalDnsRecords .ports -}}true{{- end -}}
{{- end -}}

{{/* Fully qualified name of a service's headless Service. Argument: (list $ name). */}}
{{- define "agentEnv.serviceHost" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s.%s.svc.cluster.local" (include "agentEnv.fullname" $root) (index . 1) $root.Release.Namespace -}}
{{- end -}}

{{/* The network label of a pod; the same key as the k8s sandbox's chart, so policies in
additionalResources that select on it keep working. */}}
{{- define "agentEnv.networkLabel" -}}
aisi.gov.uk/network-{{ . }}
{{- end -}}

{{/* Whether the values define any network: "true" or "". */}}
{{- define "agentEnv.networksDefined" -}}
{{- if .Values.networks -}}true{{- end -}}
{{- end -}}

{{/* Checks that the schema cannot express; each failure names the key at fault. */}}
{{- define "agentEnv.validate" -}}
{{- $root := . -}}
{{- $full := include "agentEnv.fullname" . -}}
{{- $records := dict -}}
{{- range $name, $svc := .Values.services -}}
  {{- if not $svc -}}
    {{- fail (printf "services.%s is empty: every service needs at least an image" $name) -}}
  {{- end -}}
  {{- $sts := printf "%s-%s" $full $name -}}
  {{- if gt (len $sts) 52 -}}
    {{- fail (printf "services.%s: the StatefulSet name %q is %d characters long, but Kubernetes allows at most 52; use a shorter service or release name, or set global.fullnameOverride" $name $sts (len $sts)) -}}
  {{- end -}}
  {{- range $svc.volumes -}}
    {{- if kindIs "string" . -}}
      {{- $parts := splitList ":" . -}}
      {{- $vol := index $parts 0 -}}
      {{- if or (lt (len $parts) 2) (gt (len $parts) 3) (not (hasPrefix "/" (index $parts 1))) -}}
        {{- fail (printf "services.%s.volumes: %q is not of the form \"volume-name:/absolute/mount/path[:ro|:rw]\"" $name .) -}}
      {{- end -}}
      {{- if and (eq (len $parts) 3) (not (has (index $parts 2) (list "ro" "rw"))) -}}
        {{- fail (printf "services.%s.volumes: %q: the mode after the path must be ro or rw" $name .) -}}
      {{- end -}}
      {{- if not (hasKey ($root.Values.volumes | default dict) $vol) -}}
        {{- fail (printf "services.%s.volumes: %q refers to volume %q, which is not defined under the top-level volumes" $name . $vol) -}}
      {{- end -}}
    {{- end -}}
  {{- end -}}
  {{- if include "agentEnv.hasDnsRecord" $svc -}}
    {{- range $rec := prepend ($svc.additionalDnsRecords | default list) $name -}}
      {{- $key := lower (trimSuffix "." $rec) -}}
      {{- if and (hasKey $records $key) (ne (get $records $key) $name) -}}
        {{- fail (printf "services.%s.additionalDnsRecords: %q already names service %q" $name $rec (get $records $key)) -}}
      {{- end -}}
      {{- $_ := set $records $key $name -}}
    {{- end -}}
  {{- end -}}
{{- end -}}
{{- $domains := .Values.allowDomains | default list -}}
{{- range $p := .Values.allowDomainsPorts | default list -}}
  {{- $proto := $p.protocol | default "ANY" | upper -}}
  {{- if and (has (int $p.port) (list 80 443)) (ne $proto "UDP") -}}
    {{- fail (printf "allowDomainsPorts: port %v with protocol %s: TCP 80 and 443 are already open to allowDomains, with the HTTP Host / TLS SNI checked; opening them here would skip that check (only UDP, e.g. QUIC, may be added on these ports)" $p.port $proto) -}}
  {{- end -}}
  {{- if and $p.domain (not (has $p.domain $domains)) -}}
    {{- fail (printf "allowDomainsPorts: domain %q (port %v) is not in allowDomains" $p.domain $p.port) -}}
  {{- end -}}
{{- end -}}
{{- if .Values.agent.inject -}}
  {{- if not .Values.agent.image -}}
    {{- fail "agent.inject is true but agent.image is empty: name an image that contains the static sbx-agent binary" -}}
  {{- end -}}
{{- end -}}
{{- end -}}

{{/* The pods' service account: serviceAccountName (text as given: --set-string
serviceAccountName=null stays "null"), else "" (the namespace's default account).
serviceAccountCreate needs a name, as in the k8s sandbox. */}}
{{- define "agentEnv.serviceAccountName" -}}
{{- $name := .Values.serviceAccountName -}}
{{- if not (kindIs "invalid" $name) -}}
{{- toString $name -}}
{{- else if .Values.serviceAccountCreate -}}
{{- fail "serviceAccountCreate is true but serviceAccountName is not set: name the account to create (serviceAccountName: my-sa)" -}}
{{- end -}}
{{- end -}}
