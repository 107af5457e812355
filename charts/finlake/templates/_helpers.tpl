{{/* Names, labels, images and the pieces every finlake pod shares. */}}

{{- define "finlake.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "finlake.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "finlake.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "finlake.selectorLabels" -}}
app.kubernetes.io/name: {{ include "finlake.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "finlake.labels" -}}
helm.sh/chart: {{ include "finlake.chart" . }}
{{ include "finlake.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: finlake
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* A component's object name: "<fullname>-<component>", at most 63 characters. Call with (list $ "operator"). */}}
{{- define "finlake.componentName" -}}
{{- $root := index . 0 }}
{{- printf "%s-%s" (include "finlake.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "finlake.componentSelectorLabels" -}}
{{ include "finlake.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "finlake.componentLabels" -}}
{{ include "finlake.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* "<registry>/<repository>:<tag>". Call with (list $ .Values.<component>.image). */}}
{{- define "finlake.image" -}}
{{- $root := index . 0 }}
{{- $image := index . 1 }}
{{- $tag := $image.tag | default $root.Values.global.imageTag | default $root.Chart.AppVersion }}
{{- printf "%s/%s:%s" $root.Values.global.imageRegistry $image.repository $tag }}
{{- end }}

{{/*
The platform ConfigMap: Kafka, registry, Trino and catalog endpoints as FINLAKE_* variables. The operator's children
(producers, Spark drivers, alerting) read it by this fixed name in their own namespace, so the chart renders it in
the release namespace and in every namespace of `finlake.platformNamespaces`.
*/}}
{{- define "finlake.configMapName" -}}
finlake-platform
{{- end }}

{{/*
Namespaces that get the platform ConfigMap: the release namespace, the watched ones, and those of
`sparkApps.serviceAccount.namespaces`, which name where the children run when the operator is cluster-wide (it
watches every namespace, so its watched ones are no guide there).
*/}}
{{- define "finlake.platformNamespaces" -}}
{{- $namespaces := list .Release.Namespace }}
{{- if .Values.operator.enabled }}
{{- $namespaces = concat $namespaces (splitList "," (include "finlake.operator.watchNamespaces" .)) }}
{{- end }}
{{- $namespaces = concat $namespaces .Values.sparkApps.serviceAccount.namespaces }}
{{- join "," (uniq $namespaces) }}
{{- end }}

{{- define "finlake.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "finlake.componentName" (list . "operator")) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespaces the operator watches (namespaced mode). */}}
{{- define "finlake.operator.watchNamespaces" -}}
{{- $namespaces := .Values.operator.watchNamespaces | default (list .Release.Namespace) }}
{{- join "," (uniq $namespaces) }}
{{- end }}

{{/* Pod-level settings shared by every finlake Deployment. Call with (list $ .Values.<component>). */}}
{{- define "finlake.podSpecCommon" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- with $root.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $component.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $component.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Environment of every finlake container: the shared ConfigMap, then credentials from Secret references. */}}
{{- define "finlake.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "finlake.configMapName" . }}
{{- end }}

{{- define "finlake.credentialsEnv" -}}
{{- $names := dict "catalogPassword" "FINLAKE_LAKE__CATALOG_PASSWORD" "s3AccessKeyId" "FINLAKE_LAKE__S3_ACCESS_KEY_ID" "s3SecretAccessKey" "FINLAKE_LAKE__S3_SECRET_ACCESS_KEY" "registryPassword" "FINLAKE_REGISTRY__BASIC_AUTH_PASSWORD" }}
{{- range $key := keys $names | sortAlpha }}
{{- $ref := index $.Values.credentials $key }}
{{- if $ref.secretName }}
- name: {{ index $names $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secretName }}
      key: {{ $ref.key }}
{{- end }}
{{- end }}
{{- end }}

{{/* Writable scratch space on a read-only root filesystem: FINLAKE_HOME and /tmp. */}}
{{- define "finlake.scratchVolumeMounts" -}}
- name: home
  mountPath: {{ .Values.config.home }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "finlake.scratchVolumes" -}}
- name: home
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- end }}

{{/* The volumes of a component that keeps state under FINLAKE_HOME (the ingestion service's Yahoo
watermarks, the alert service's delivery log and silences): the home on its PersistentVolumeClaim when
`persistence.enabled`, else on an emptyDir like every other component's. Call with
(list $ "ingestion" .Values.ingestion). */}}
{{- define "finlake.stateVolumes" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $values := index . 2 }}
- name: home
  {{- if $values.persistence.enabled }}
  persistentVolumeClaim:
    claimName: {{ include "finlake.componentName" (list $root $component) }}-state
  {{- else }}
  emptyDir: {}
  {{- end }}
- name: tmp
  emptyDir: {}
{{- end }}

{{/* The PersistentVolumeClaim of a component's home (ReadWriteOnce: its Deployment replaces its pod with
Recreate). Call with (list $ "ingestion" .Values.ingestion). */}}
{{- define "finlake.statePvc" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $values := index . 2 }}
{{- if and $values.enabled $values.persistence.enabled }}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "finlake.componentName" (list $root $component) }}-state
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "finlake.componentLabels" (list $root $component) | nindent 4 }}
spec:
  accessModes:
    - ReadWriteOnce
  {{- with $values.persistence.storageClassName }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ $values.persistence.size | quote }}
{{- end }}
{{- end }}

{{/* Recreate, not a rolling update, when the pod's home is a ReadWriteOnce claim: the old pod lets
go of the volume before the new one mounts it. */}}
{{- define "finlake.stateStrategy" -}}
{{- if .persistence.enabled }}
strategy:
  type: Recreate
{{- end }}
{{- end }}

{{/* A PodDisruptionBudget for one component. Call with (list $ "query-api" .Values.queryApi). */}}
{{- define "finlake.pdb" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $values := index . 2 }}
{{- if and $values.enabled $values.pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "finlake.componentName" (list $root $component) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "finlake.componentLabels" (list $root $component) | nindent 4 }}
spec:
  {{- if hasKey $values.pdb "minAvailable" }}
  minAvailable: {{ $values.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $values.pdb.maxUnavailable }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "finlake.componentSelectorLabels" (list $root $component) | nindent 6 }}
{{- end }}
{{- end }}

{{/* A ClusterIP Service for one component's `http` port. Call with (list $ "ingestion" .Values.ingestion). */}}
{{- define "finlake.service" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- $values := index . 2 }}
{{- if $values.enabled }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "finlake.componentName" (list $root $component) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "finlake.componentLabels" (list $root $component) | nindent 4 }}
spec:
  type: {{ dig "service" "type" "ClusterIP" $values }}
  selector:
    {{- include "finlake.componentSelectorLabels" (list $root $component) | nindent 4 }}
  ports:
    - name: http
      port: {{ dig "service" "port" $values.port $values }}
      targetPort: http
      protocol: TCP
{{- end }}
{{- end }}

{{/* The names of global.imagePullSecrets as a JSON list (the operator gives them to the pods it creates). */}}
{{- define "finlake.pullSecretNames" -}}
{{- $names := list }}
{{- range .Values.global.imagePullSecrets }}
{{- $names = append $names .name }}
{{- end }}
{{- toJson $names }}
{{- end }}
