{{/*
A service's Deployment: (dict "root" $ "component" NAME "args" LIST "strategy" MAP "readiness" PATH
"ports" LIST), "ports" being more container ports than `metrics` (ingest's receivers); "values"
(its values when not .Values.<component>) and "binary" (logwarden-<binary> when not the
component's) for the detector's readers.
Probes use the named `metrics` port (telemetry.listen 0.0.0.0:9464).
*/}}
{{- define "logwarden.deployment" -}}
{{- $root := .root -}}
{{- $v := .values | default (index $root.Values .component) -}}
{{- $scaled := or (dig "autoscaling" "enabled" false $v) (dig "keda" "enabled" false $v) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "logwarden.name" . }}
  labels:
    {{- include "logwarden.labels" . | nindent 4 }}
spec:
  {{- if not $scaled }}
  replicas: {{ int $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "logwarden.selectorLabels" . | nindent 6 }}
  {{- with .strategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "logwarden.labels" . | nindent 8 }}
      annotations:
        {{- include "logwarden.checksums" . | nindent 8 }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      # The strict config loader must never see Kubernetes' injected *_SERVICE_HOST variables.
      enableServiceLinks: false
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "logwarden.podSecurityContext" . | nindent 8 }}
      # The services drain within 20 s of SIGTERM.
      terminationGracePeriodSeconds: 30
      containers:
        - name: {{ .component }}
          image: {{ include "logwarden.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: [/usr/local/bin/logwarden-{{ .binary | default .component }}]
          args:
            {{- toYaml .args | nindent 12 }}
          {{- with include "logwarden.env" . | trim }}
          env:
            {{- . | nindent 12 }}
          {{- end }}
          ports:
            - {name: metrics, containerPort: 9464, protocol: TCP}
            {{- with .ports }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          livenessProbe:
            httpGet: {path: /healthz, port: metrics}
            initialDelaySeconds: 10
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            httpGet: {path: {{ .readiness | default "/readyz" }}, port: metrics}
            periodSeconds: 5
            failureThreshold: 3
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- include "logwarden.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            {{- include "logwarden.volumeMounts" . | nindent 12 }}
      volumes:
        {{- include "logwarden.volumes" . | nindent 8 }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/*
The provisioner's pod (the post-install Job, the retention CronJob, the helm test Job):
(dict "root" $ "component" "provisioner" "args" LIST "env" LIST "serviceAccount" NAME), and for
the topics hook Job "component" "topics" with its own "configMap", "secretName", "tlsSecrets" and
"resources".
*/}}
{{- define "logwarden.provisionerPod" -}}
{{- $root := .root -}}
{{- $v := $root.Values.provisioner -}}
metadata:
  labels:
    {{- include "logwarden.labels" (dict "root" $root "component" (.labelComponent | default .component)) | nindent 4 }}
spec:
  enableServiceLinks: false
  {{- if .serviceAccount }}
  serviceAccountName: {{ .serviceAccount }}
  {{- else }}
  automountServiceAccountToken: false
  {{- end }}
  restartPolicy: Never
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "logwarden.podSecurityContext" . | nindent 4 }}
  containers:
    - name: {{ .container | default "provisioner" }}
      image: {{ include "logwarden.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: [/usr/local/bin/logwarden-provisioner]
      args:
        {{- toYaml .args | nindent 8 }}
      {{- $env := include "logwarden.env" . | trim }}
      {{- if or $env .env }}
      env:
        {{- with .env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- $env | nindent 8 }}
      {{- end }}
      resources:
        {{- toYaml (.resources | default $v.resources) | nindent 8 }}
      securityContext:
        {{- include "logwarden.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        {{- include "logwarden.volumeMounts" . | nindent 8 }}
  volumes:
    {{- include "logwarden.volumes" . | nindent 4 }}
{{- end }}
