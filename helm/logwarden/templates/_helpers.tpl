{{/*
Names, labels and the pieces every workload shares. Templates taking a component are called with
(dict "root" $ "component" "<name>").
*/}}

{{/* Base of every name: room is left for the longest suffix (CronJob names stay under 52). */}}
{{- define "logwarden.base" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end }}

{{- define "logwarden.name" -}}
{{- printf "%s-%s" (include "logwarden.base" .root) .component -}}
{{- end }}

{{- define "logwarden.selectorLabels" -}}
app.kubernetes.io/name: logwarden
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "logwarden.labels" -}}
{{ include "logwarden.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: logwarden
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "logwarden.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end }}

{{/* The Secret with passwords and channel URLs: the user's, or the one the chart renders. */}}
{{- define "logwarden.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "logwarden.base" .)) -}}
{{- end }}

{{/* TLS material of "kafka" or "opensearch" (.service): a Secret holding ca.crt, tls.crt, tls.key. */}}
{{- define "logwarden.tlsSecretName" -}}
{{- $tls := (index .root.Values .service).tls -}}
{{- $tls.existingSecret | default (printf "%s-%s-tls" (include "logwarden.base" .root) .service) -}}
{{- end }}

{{/* Whether the TLS material of .service is mounted ("true" or empty). */}}
{{- define "logwarden.tlsMounted" -}}
{{- $v := index .root.Values .service -}}
{{- $wanted := or (ne .service "kafka") $v.tls.enabled -}}
{{- if and $wanted (or $v.tls.existingSecret $v.tls.ca $v.tls.certificate) }}true{{ end -}}
{{- end }}

{{/* Keys of the TLS Secret the chart renders for .service, from PEM in values. */}}
{{- define "logwarden.tlsSecretData" -}}
{{- $tls := (index .root.Values .service).tls -}}
{{- with $tls.ca }}
ca.crt: {{ . | b64enc }}
{{- end }}
{{- with $tls.certificate }}
tls.crt: {{ . | b64enc }}
{{- end }}
{{- with $tls.key }}
tls.key: {{ . | b64enc }}
{{- end }}
{{- end }}

{{/* Keys of the Secret the chart renders from values. */}}
{{- define "logwarden.secretData" -}}
{{- $s := .Values.secrets -}}
{{- $keys := dict "kafka-sasl-password" $s.kafkaSaslPassword "opensearch-password" $s.opensearchPassword "alert-webhook-url" $s.alertWebhookUrl "smtp-password" $s.smtpPassword "aws-access-key-id" $s.awsAccessKeyId "aws-secret-access-key" $s.awsSecretAccessKey "aws-session-token" $s.awsSessionToken -}}
{{- range $key, $value := merge (deepCopy $keys) $s.extra }}
{{- if $value }}
{{ $key }}: {{ $value | toString | b64enc }}
{{- end }}
{{- end }}
{{- end }}

{{/* The services' kafka section. The SASL user and password come as variables (see logwarden.env). */}}
{{- define "logwarden.kafkaConfig" -}}
{{- $k := .Values.kafka -}}
{{- $c := dict "brokers" $k.brokers "topics" $k.topics -}}
{{- with $k.properties -}}
{{- $properties := dict -}}
{{- range $key, $value := . }}{{ $_ := set $properties $key (toString $value) }}{{ end -}}
{{- $_ := set $c "properties" $properties -}}
{{- end -}}
{{- if $k.allowInsecure }}{{ $_ := set $c "allow_insecure" true }}{{ end -}}
{{- if $k.tls.enabled -}}
{{- $tls := dict "verify_hostname" $k.tls.verifyHostname -}}
{{- if or $k.tls.existingSecret $k.tls.ca }}{{ $_ := set $tls "ca_file" "/etc/logwarden/kafka-tls/ca.crt" }}{{ end -}}
{{- if or $k.tls.clientCertificate $k.tls.certificate -}}
{{- $_ := set $tls "certificate_file" "/etc/logwarden/kafka-tls/tls.crt" -}}
{{- $_ := set $tls "key_file" "/etc/logwarden/kafka-tls/tls.key" -}}
{{- end -}}
{{- $_ := set $c "tls" $tls -}}
{{- end -}}
{{- if $k.sasl.enabled }}{{ $_ := set $c "sasl" (dict "mechanism" $k.sasl.mechanism) }}{{ end -}}
{{- toYaml $c -}}
{{- end }}

{{/* The services' opensearch section. The password comes as a variable (see logwarden.env). */}}
{{- define "logwarden.opensearchConfig" -}}
{{- $o := .Values.opensearch -}}
{{- $c := dict "url" $o.url "verify_certificates" $o.verifyCertificates "allow_insecure" $o.allowInsecure -}}
{{- with $o.username }}{{ $_ := set $c "username" . }}{{ end -}}
{{- if or $o.tls.existingSecret $o.tls.ca }}{{ $_ := set $c "ca_file" "/etc/logwarden/opensearch-tls/ca.crt" }}{{ end -}}
{{- if or $o.tls.clientCertificate $o.tls.certificate -}}
{{- $_ := set $c "certificate_file" "/etc/logwarden/opensearch-tls/tls.crt" -}}
{{- $_ := set $c "key_file" "/etc/logwarden/opensearch-tls/tls.key" -}}
{{- end -}}
{{- if $o.awsSigv4.enabled -}}
{{- if or $o.username $o.tls.clientCertificate $o.tls.certificate -}}
{{- fail "opensearch.awsSigv4 signs every request with the AWS credentials: leave opensearch.username and the client certificate (opensearch.tls.clientCertificate, opensearch.tls.certificate) empty" -}}
{{- end -}}
{{- if not $o.awsSigv4.region }}{{ fail "opensearch.awsSigv4.region is empty: name the domain's region, e.g. eu-west-1" }}{{ end -}}
{{- $_ := set $c "aws_sigv4" (dict "region" $o.awsSigv4.region "service" $o.awsSigv4.service) -}}
{{- end -}}
{{- toYaml $c -}}
{{- end }}

{{/*
What each binary reads: its sections and nothing else, so no pod holds a credential it does not
use. "topics" is the provisioner's topics subcommand (Kafka only).
*/}}
{{- define "logwarden.needs" -}}
{{- $needs := dict "transformer" "kafka" "sink" "kafka opensearch" "detector" "kafka opensearch channels" "producer" "kafka" "provisioner" "opensearch channels" "topics" "kafka" "ingest" "kafka" "detector-reader" "kafka" -}}
{{- index $needs .component -}}
{{- end }}

{{/* A component's config file (/etc/logwarden/config/config.yaml). */}}
{{- define "logwarden.config" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $needs := include "logwarden.needs" . | splitList " " -}}
{{- $telemetry := dict "log_format" $v.telemetry.logFormat "log_level" $v.telemetry.logLevel -}}
{{- $cfg := dict "telemetry" $telemetry -}}
{{- if has "kafka" $needs }}{{ $_ := set $cfg "kafka" (include "logwarden.kafkaConfig" $root | fromYaml) }}{{ end -}}
{{- if has "opensearch" $needs }}{{ $_ := set $cfg "opensearch" (include "logwarden.opensearchConfig" $root | fromYaml) }}{{ end -}}
{{- if eq .component "transformer" -}}
{{- $_ := set $telemetry "listen" "0.0.0.0:9464" -}}
{{- $_ := set $cfg "transformer" (merge (dict "rules" "/etc/logwarden/config/rules.yaml" "group_id" (include "logwarden.groupId" .)) (deepCopy $v.transformer.config)) -}}
{{- else if eq .component "sink" -}}
{{- $_ := set $telemetry "listen" "0.0.0.0:9464" -}}
{{- /* The sink writes the events alias the spec names (the detector's history, the provisioner's retention). */ -}}
{{- $_ := set $cfg "sink" (merge (dict "group_id" (include "logwarden.groupId" .) "index" $v.spec.events) (deepCopy $v.sink.config)) -}}
{{- else if or (eq .component "detector") (eq .component "detector-reader") -}}
{{- $_ := set $telemetry "listen" "0.0.0.0:9464" -}}
{{- /* The detector checks the spec's feature fields against the rules the transformer applies;
its readers project with the same spec and section (the reader's group, its batches). */ -}}
{{- $input := ternary "projected" "enriched" (gt (int $v.detector.readers.replicas) 0) -}}
{{- $_ := set $cfg "detector" (merge (dict "spec" "/etc/logwarden/config/spec.yaml" "rules" "/etc/logwarden/config/rules.yaml" "input" $input) (deepCopy $v.detector.config)) -}}
{{- else if eq .component "producer" -}}
{{- $_ := set $telemetry "listen" "0.0.0.0:9464" -}}
{{- $generator := deepCopy $v.producer.config -}}
{{- if $v.producer.scenario }}{{ $_ := set $generator "scenario" "/etc/logwarden/config/scenario.yaml" }}{{ end -}}
{{- $_ := set $cfg "generator" $generator -}}
{{- else if eq .component "ingest" -}}
{{- $_ := set $telemetry "listen" "0.0.0.0:9464" -}}
{{- $_ := set $cfg "ingest" (include "logwarden.ingestConfig" $root | fromYaml) -}}
{{- else if eq .component "provisioner" -}}
{{- $_ := set $cfg "provisioner" (merge (dict "spec" "/etc/logwarden/config/spec.yaml") (deepCopy $v.provisioner.config)) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end }}

{{/*
The ingest section: the user's `ingest.config` with the listeners from `ingest.ports`, each token
read from its LOGWARDEN_SECRET_INGEST_<NAME> variable (see logwarden.env), and the bucket's
checkpoint on the state volume unless the user names one.
*/}}
{{- define "logwarden.ingestConfig" -}}
{{- $i := .Values.ingest -}}
{{- $c := deepCopy $i.config -}}
{{- $http := merge (dict "listen" (printf "0.0.0.0:%d" (int $i.ports.http))) (dig "http" dict $c) -}}
{{- $_ := set $c "http" $http -}}
{{- $syslog := deepCopy (dig "syslog" dict $c) -}}
{{- if $i.ports.syslogTcp }}{{ $_ := set $syslog "tcp" (printf "0.0.0.0:%d" (int $i.ports.syslogTcp)) }}{{ end -}}
{{- if $i.ports.syslogUdp }}{{ $_ := set $syslog "udp" (printf "0.0.0.0:%d" (int $i.ports.syslogUdp)) }}{{ end -}}
{{- if $syslog }}{{ $_ := set $c "syslog" $syslog }}{{ end -}}
{{- $tokens := dict -}}
{{- range $name, $key := $i.tokens }}{{ $_ := set $tokens $name (dict "env" (include "logwarden.ingestTokenEnv" $name)) }}{{ end -}}
{{- if $tokens }}{{ $_ := set $c "tokens" $tokens }}{{ end -}}
{{- with $c.bucket -}}
{{- if gt (int $i.replicas) 1 -}}
{{- fail "ingest.config.bucket is set with ingest.replicas above 1: every replica would read every key of the bucket; set ingest.replicas to 1 (or run the bucket reader as its own release)" -}}
{{- end -}}
{{- $_ := set $c "bucket" (merge (deepCopy .) (dict "checkpoint_file" "/var/lib/logwarden-ingest/bucket-done")) -}}
{{- end -}}
{{- toYaml $c -}}
{{- end }}

{{/* The variable holding ingest token .: LOGWARDEN_SECRET_INGEST_<NAME>. */}}
{{- define "logwarden.ingestTokenEnv" -}}
{{- printf "LOGWARDEN_SECRET_INGEST_%s" (. | upper | replace "-" "_") -}}
{{- end }}

{{/* The consumer group of the transformer or the sink (also what KEDA measures the lag of). */}}
{{- define "logwarden.groupId" -}}
{{- (index .root.Values .component).config.group_id | default (printf "logwarden-%s" .component) -}}
{{- end }}

{{/* Environment of a component's container: secrets only, by reference, for what it needs. */}}
{{- define "logwarden.env" -}}
{{- $root := .root -}}
{{- $v := $root.Values -}}
{{- $needs := include "logwarden.needs" . | splitList " " -}}
{{- $secret := .secretName | default (include "logwarden.secretName" $root) -}}
{{- if and (has "kafka" $needs) $v.kafka.sasl.enabled }}
# kafka.sasl.username as a variable too: KEDA's TriggerAuthentication reads both from here.
- name: LOGWARDEN_KAFKA__SASL__USERNAME
  value: {{ $v.kafka.sasl.username | quote }}
- name: LOGWARDEN_KAFKA__SASL__PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: kafka-sasl-password, optional: true}
{{- end }}
{{- if has "opensearch" $needs }}
{{- if $v.opensearch.username }}
- name: LOGWARDEN_OPENSEARCH__PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: opensearch-password, optional: true}
{{- end }}
{{- if $v.opensearch.awsSigv4.enabled }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: aws-access-key-id, optional: true}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: aws-secret-access-key, optional: true}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: aws-session-token, optional: true}
{{- end }}
{{- end }}
{{- if eq .component "ingest" }}
{{- range $name, $key := $v.ingest.tokens }}
- name: {{ include "logwarden.ingestTokenEnv" $name }}
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ $key }}, optional: true}
{{- end }}
{{- if $v.ingest.config.bucket }}
- name: LOGWARDEN_INGEST__BUCKET__SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: ingest-bucket-secret-access-key, optional: true}
{{- end }}
{{- end }}
{{- if has "channels" $needs }}
{{- range $name, $key := $v.secrets.channelEnv }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ $key }}, optional: true}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes of a component: its config file (and rules or spec), /tmp, and TLS material. */}}
{{- define "logwarden.volumes" -}}
{{- $root := .root -}}
{{- $needs := include "logwarden.needs" . | splitList " " -}}
{{- $tlsSecrets := .tlsSecrets | default dict -}}
- name: config
  configMap:
    name: {{ .configMap | default (printf "%s-config" (include "logwarden.base" $root)) }}
    items:
      - {key: {{ .component }}.yaml, path: config.yaml}
      {{- if has .component (list "transformer" "detector" "detector-reader") }}
      - {key: rules.yaml, path: rules.yaml}
      {{- end }}
      {{- if has .component (list "detector" "detector-reader" "provisioner") }}
      - {key: spec.yaml, path: spec.yaml}
      {{- end }}
      {{- if and (eq .component "producer") $root.Values.producer.scenario }}
      - {key: scenario.yaml, path: scenario.yaml}
      {{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if eq .component "ingest" }}
- name: state
  {{- with $root.Values.ingest.state.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ . }}
  {{- else }}
  emptyDir:
    sizeLimit: 64Mi
  {{- end }}
{{- end }}
{{- range $service := list "kafka" "opensearch" }}
{{- if and (has $service $needs) (include "logwarden.tlsMounted" (dict "root" $root "service" $service)) }}
- name: {{ $service }}-tls
  secret:
    secretName: {{ (index $tlsSecrets $service) | default (include "logwarden.tlsSecretName" (dict "root" $root "service" $service)) }}
    defaultMode: 288  # 0440: read by the owner and the group (fsGroup 65532)
{{- end }}
{{- end }}
{{- end }}

{{- define "logwarden.volumeMounts" -}}
{{- $root := .root -}}
{{- $needs := include "logwarden.needs" . | splitList " " -}}
- {name: config, mountPath: /etc/logwarden/config, readOnly: true}
- {name: tmp, mountPath: /tmp}
{{- if eq .component "ingest" }}
- {name: state, mountPath: /var/lib/logwarden-ingest}
{{- end }}
{{- range $service := list "kafka" "opensearch" }}
{{- if and (has $service $needs) (include "logwarden.tlsMounted" (dict "root" $root "service" $service)) }}
- {name: {{ $service }}-tls, mountPath: /etc/logwarden/{{ $service }}-tls, readOnly: true}
{{- end }}
{{- end }}
{{- end }}

{{/* Restricted pod security: non-root 65532, the runtime's seccomp profile. */}}
{{- define "logwarden.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "logwarden.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end }}

{{/*
Pod annotations that change when what a pod reads changes, so `helm upgrade` rolls it: its
config file (rules and spec included) and the Secrets the chart renders.
*/}}
{{- define "logwarden.checksums" -}}
{{- $root := .root -}}
{{- $config := include "logwarden.config" . -}}
{{- if has .component (list "transformer" "detector" "detector-reader") }}{{ $config = print $config (toYaml $root.Values.transformer.rules) }}{{ end -}}
{{- if has .component (list "detector" "detector-reader" "provisioner") }}{{ $config = print $config (toYaml $root.Values.spec) }}{{ end -}}
{{- if eq .component "producer" }}{{ $config = print $config (toYaml $root.Values.producer.scenario) }}{{ end -}}
checksum/config: {{ $config | sha256sum }}
checksum/secrets: {{ print (include "logwarden.secretName" $root) (include "logwarden.secretData" $root) (include "logwarden.tlsSecretData" (dict "root" $root "service" "kafka")) (include "logwarden.tlsSecretData" (dict "root" $root "service" "opensearch")) | sha256sum }}
{{- end }}

{{/* The annotations of a hook resource. */}}
{{- define "logwarden.hook" -}}
helm.sh/hook: {{ .hook }}
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}
