/**
 * @module What sst.config.ts declares, checked without deploying: it is evaluated with recording stand-ins for SST's
 * globals (infra/harness.ts) and every resource's arguments are asserted: DLQ redrives, the GPU capacity provider,
 * queue-depth scaling, least-privilege IAM, Lambda handlers that exist.
 */
import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { evaluateSstConfig, type Harness } from './harness.ts'
import { ANALYSIS_MAX_RECEIVES, ENCODE_MAX_RECEIVES, STORE_PREFIXES } from './constants.ts'
import type { Statement } from './iam.ts'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
let h: Harness

before(async () => {
  h = await evaluateSstConfig(`${ROOT}sst.config.ts`)
})

const ref = (type: string, name: string, attr: string) => `\${${type}:${name}.${attr}}`
const str = (x: unknown) => String(x)
const envOf = (container: { environment: Array<{ name: string; value: string }> }) =>
  Object.fromEntries(container.environment.map(e => [e.name, e.value]))
const container = () => JSON.parse(h.one('aws.ecs.TaskDefinition', 'GpuWorkerTask').args.containerDefinitions.value)[0]

test('the app: SST home on AWS, production retains and protects its resources', async () => {
  assert.equal(h.app.home, 'aws')
  assert.equal(h.app.removal, 'remove')
  const { default: config } = await import(`${ROOT}sst.config.ts`)
  assert.equal(config.app({ stage: 'production' }).removal, 'retain')
  assert.equal(config.app({ stage: 'production' }).protect, true)
})

test('encode queue: redrive to its DLQ after as many receives as the GPU worker counts (MAX_RECEIVES)', () => {
  const encode = h.one('sst.aws.Queue', 'Encode').args
  assert.equal(str(encode.dlq.queue), ref('sst.aws.Queue', 'EncodeDlq', 'arn'))
  assert.equal(encode.dlq.retry, ENCODE_MAX_RECEIVES)
  assert.ok(encode.dlq.retry >= 2 && encode.dlq.retry <= 10, 'a few receives, not one and not endless')
  // The worker marks the dataset failed on its last receive: it must know the same number.
  assert.equal(Number(envOf(container()).MAX_RECEIVES), encode.dlq.retry)
  const workerDefault = /MAX_RECEIVES \?\? (\d+)/.exec(readFileSync(`${ROOT}gpu-worker/src/main.ts`, 'utf8'))?.[1]
  assert.equal(Number(workerDefault), encode.dlq.retry, "gpu-worker/src/main.ts's default MAX_RECEIVES")
  // The worker holds a message 300 s and heartbeats: the queue's own timeout must not be shorter.
  assert.ok(parseInt(encode.visibilityTimeout) >= 300)
  assert.ok(h.one('sst.aws.Queue', 'EncodeDlq').args.transform.queue.messageRetentionSeconds >= 4 * 24 * 3600)
})

test('analysis queue: its DLQ, a Lambda subscribed with partial batch responses, and the same receive count', () => {
  const analysis = h.one('sst.aws.Queue', 'Analysis').args
  assert.equal(str(analysis.dlq.queue), ref('sst.aws.Queue', 'AnalysisDlq', 'arn'))
  assert.equal(analysis.dlq.retry, ANALYSIS_MAX_RECEIVES)
  const fn = h.one('sst.aws.Function', 'AnalysisConsumer').args
  assert.equal(Number(fn.environment.MAX_RECEIVES), analysis.dlq.retry)
  assert.equal(str(fn.environment.ANALYSIS_QUEUE_URL), ref('sst.aws.Queue', 'Analysis', 'url'))
  // SQS needs the visibility timeout to cover the function's timeout, or a running job is handed out twice.
  assert.ok(parseInt(analysis.visibilityTimeout) >= parseInt(fn.timeout))
  const subs = h.calls.filter(c => c.type === 'sst.aws.Queue.subscribe')
  assert.equal(subs.length, 1)
  assert.equal(subs[0].name, 'Analysis')
  const [subscriber, args] = subs[0].args.arguments
  assert.equal(str(subscriber), ref('sst.aws.Function', 'AnalysisConsumer', 'arn'))
  assert.equal(args.batch.partialResponses, true)
  assert.equal(args.batch.size, 1)
})

test('Lambda handlers point at files that exist and export the handler', async () => {
  const fns = h.byType('sst.aws.Function')
  assert.deepEqual(fns.map(f => f.name).sort(), ['AnalysisConsumer', 'Api'])
  for (const f of fns) {
    const handler: string = f.args.handler
    const dot = handler.lastIndexOf('.')
    const file = `${ROOT}${handler.slice(0, dot)}.ts`
    assert.ok(existsSync(file), `${f.name}: ${file}`)
    const mod = await import(file)
    assert.equal(typeof mod[handler.slice(dot + 1)], 'function', `${f.name}: ${handler}`)
    // IAM only through the explicit statements: `link` would grant whole resources.
    assert.equal(f.args.link, undefined, `${f.name} must not use link`)
    assert.equal(str(f.args.environment.BUCKET), ref('sst.aws.Bucket', 'Store', 'name'))
  }
  const api = h.one('sst.aws.Function', 'Api').args
  assert.equal(api.url, true)
  assert.equal(str(api.environment.QUEUE_URL), ref('sst.aws.Queue', 'Encode', 'url'))
})

test('GPU worker: ECS on EC2 GPU instances through a capacity provider, never Fargate', () => {
  const lt = h.one('aws.ec2.LaunchTemplate', 'GpuLaunchTemplate').args
  assert.match(lt.instanceType, /^(g|p)\d/, 'a GPU instance family')
  const amiCall = h.calls.find(c => c.type === 'aws.ssm.getParameterOutput')
  assert.match(amiCall?.args.arguments[0].name, /^\/aws\/service\/ecs\/optimized-ami\/.*\/gpu\/recommended\/image_id$/)
  const userData = Buffer.from(str(lt.userData), 'base64').toString()
  assert.match(userData, /ECS_CLUSTER=\$\{aws\.ecs\.Cluster:GpuCluster\.name\}/)
  assert.match(userData, /ECS_ENABLE_GPU_SUPPORT=true/)
  // Containers must not reach instance credentials (SSRF through a dataset URL).
  assert.equal(lt.metadataOptions.httpTokens, 'required')
  assert.equal(lt.metadataOptions.httpPutResponseHopLimit, 1)

  const asg = h.one('aws.autoscaling.Group', 'GpuAsg')
  assert.equal(asg.args.minSize, 0)
  assert.equal(str(asg.args.launchTemplate.id), ref('aws.ec2.LaunchTemplate', 'GpuLaunchTemplate', 'id'))
  assert.equal(asg.args.protectFromScaleIn, true)
  const cp = h.one('aws.ecs.CapacityProvider', 'GpuCapacity').args.autoScalingGroupProvider
  assert.equal(str(cp.autoScalingGroupArn), ref('aws.autoscaling.Group', 'GpuAsg', 'arn'))
  assert.equal(cp.managedScaling.status, 'ENABLED')
  assert.equal(cp.managedTerminationProtection, 'ENABLED')
  const ccp = h.one('aws.ecs.ClusterCapacityProviders', 'GpuClusterCapacity').args
  assert.deepEqual(ccp.capacityProviders.map(str), [ref('aws.ecs.CapacityProvider', 'GpuCapacity', 'name')])

  const td = h.one('aws.ecs.TaskDefinition', 'GpuWorkerTask').args
  assert.deepEqual(td.requiresCompatibilities, ['EC2'])
  const c = container()
  assert.deepEqual(c.resourceRequirements, [{ type: 'GPU', value: '1' }])
  assert.match(c.image, /^\$\{aws\.ecr\.Repository:GpuWorkerRepo\.repositoryUrl\}:/)
  assert.deepEqual(c.command ?? null, null, "the image's own CMD (gpu-worker/Dockerfile) runs")
  const env = envOf(c)
  assert.equal(env.QUEUE_URL, ref('sst.aws.Queue', 'Encode', 'url'))
  assert.equal(env.BUCKET, ref('sst.aws.Bucket', 'Store', 'name'))
  assert.ok(existsSync(`${ROOT}gpu-worker/Dockerfile`))

  const svc = h.one('aws.ecs.Service', 'GpuWorker')
  assert.equal(svc.args.launchType, undefined)
  assert.deepEqual(
    svc.args.capacityProviderStrategies.map((s: { capacityProvider: unknown }) => str(s.capacityProvider)),
    [ref('aws.ecs.CapacityProvider', 'GpuCapacity', 'name')]
  )
  assert.ok(svc.opts?.ignoreChanges.includes('desiredCount'), 'autoscaling owns desiredCount')
  assert.equal(h.byType('sst.aws.Service').length, 0, "SST's Service is Fargate-only")
})

test('scaling on queue depth: out on ApproximateNumberOfMessagesVisible, in to zero only when nothing is waiting or in flight', () => {
  const target = h.one('aws.appautoscaling.Target', 'GpuWorkerScaling').args
  assert.equal(
    str(target.resourceId),
    `service/${ref('aws.ecs.Cluster', 'GpuCluster', 'name')}/${ref('aws.ecs.Service', 'GpuWorker', 'name')}`
  )
  assert.equal(target.scalableDimension, 'ecs:service:DesiredCount')
  assert.equal(target.minCapacity, 0)
  const queueName = ref('sst.aws.Queue', 'Encode', 'nodes') + '.queue.name'

  const backlog = h.one('aws.cloudwatch.MetricAlarm', 'EncodeBacklog').args
  assert.equal(backlog.metricName, 'ApproximateNumberOfMessagesVisible')
  assert.equal(str(backlog.dimensions.QueueName), queueName)
  assert.deepEqual(backlog.alarmActions.map(str), [ref('aws.appautoscaling.Policy', 'GpuWorkerScaleOut', 'arn')])
  const out = h.one('aws.appautoscaling.Policy', 'GpuWorkerScaleOut').args
  assert.equal(str(out.resourceId), ref('aws.appautoscaling.Target', 'GpuWorkerScaling', 'resourceId'))
  assert.equal(
    out.stepScalingPolicyConfiguration.adjustmentType,
    'ChangeInCapacity',
    'scale-out never removes busy workers'
  )
  const steps = out.stepScalingPolicyConfiguration.stepAdjustments
  assert.ok(steps.every((s: { scalingAdjustment: number }) => s.scalingAdjustment > 0))
  assert.ok(
    steps
      .slice(0, -1)
      .every(
        (s: { metricIntervalUpperBound?: string }, i: number) =>
          s.metricIntervalUpperBound === steps[i + 1].metricIntervalLowerBound
      ),
    'contiguous steps'
  )
  assert.equal(steps.at(-1).metricIntervalUpperBound, undefined, 'the last step is open-ended')

  const idle = h.one('aws.cloudwatch.MetricAlarm', 'EncodeIdle').args
  const metrics = idle.metricQueries
    .filter((q: { metric?: unknown }) => q.metric)
    .map((q: { metric: { metricName: string; dimensions: { QueueName: unknown } } }) => {
      assert.equal(str(q.metric.dimensions.QueueName), queueName)
      return q.metric.metricName
    })
  assert.deepEqual(metrics.sort(), ['ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesVisible'])
  assert.equal(idle.threshold, 0)
  assert.deepEqual(idle.alarmActions.map(str), [ref('aws.appautoscaling.Policy', 'GpuWorkerScaleIn', 'arn')])
  const scaleIn = h.one('aws.appautoscaling.Policy', 'GpuWorkerScaleIn').args.stepScalingPolicyConfiguration
  assert.equal(scaleIn.adjustmentType, 'ExactCapacity')
  assert.deepEqual(
    scaleIn.stepAdjustments.map((s: { scalingAdjustment: number }) => s.scalingAdjustment),
    [0]
  )
})

const BUCKET = ref('sst.aws.Bucket', 'Store', 'arn')
const QUEUES: Record<string, string> = {
  encode: ref('sst.aws.Queue', 'Encode', 'arn'),
  analysis: ref('sst.aws.Queue', 'Analysis', 'arn')
}
const PREFIXES = new Set<string>(Object.values(STORE_PREFIXES))

function grants(statements: Statement[]) {
  const out: Array<{ action: string; resource: string }> = []
  for (const s of statements) {
    for (const a of s.actions) {
      assert.doesNotMatch(a, /\*/, `no wildcard actions (${a})`)
      for (const r of s.resources.map(str)) {
        assert.notEqual(r, '*')
        if (a.startsWith('s3:') && a !== 's3:ListBucket') {
          assert.ok(
            r.startsWith(`${BUCKET}/`) && PREFIXES.has(r.slice(BUCKET.length + 1)),
            `${a} on ${r}: only the store's known prefixes`
          )
        } else if (a === 's3:ListBucket') {
          assert.equal(r, BUCKET)
          assert.ok(
            s.conditions?.some(c => c.variable === 's3:prefix'),
            'listing is limited to prefixes'
          )
        } else {
          assert.ok(a.startsWith('sqs:') && Object.values(QUEUES).includes(r), `${a} on ${r}`)
        }
        out.push({ action: a, resource: r.startsWith(BUCKET) ? r.slice(BUCKET.length + 1) || '(bucket)' : r })
      }
    }
  }
  return out
}
const can = (g: Array<{ action: string; resource: string }>, action: string, resource: string) =>
  g.some(x => x.action === action && x.resource === resource)

test('IAM, API Lambda: its prefixes and queues only; reads keys and the catalog but cannot write them; never consumes a queue', () => {
  const g = grants(h.one('sst.aws.Function', 'Api').args.permissions)
  assert.ok(can(g, 's3:PutObject', STORE_PREFIXES.datasets) && can(g, 's3:DeleteObject', STORE_PREFIXES.datasets))
  assert.ok(can(g, 's3:GetObject', STORE_PREFIXES.apiKeys) && !can(g, 's3:PutObject', STORE_PREFIXES.apiKeys))
  assert.ok(can(g, 's3:GetObject', STORE_PREFIXES.encoders) && !can(g, 's3:PutObject', STORE_PREFIXES.encoders))
  assert.ok(can(g, 'sqs:SendMessage', QUEUES.encode) && can(g, 'sqs:SendMessage', QUEUES.analysis))
  assert.ok(!g.some(x => x.action === 'sqs:ReceiveMessage' || x.action === 'sqs:DeleteMessage'))
})

test('IAM, GPU task role: datasets, tombstones (read) and the catalog; the encode queue only; no keys, no analysis queue', () => {
  const policy = h.one('aws.iam.RolePolicy', 'GpuTaskPolicy').args
  assert.equal(str(policy.role), ref('aws.iam.Role', 'GpuTaskRole', 'id'))
  assert.equal(
    str(h.one('aws.ecs.TaskDefinition', 'GpuWorkerTask').args.taskRoleArn),
    ref('aws.iam.Role', 'GpuTaskRole', 'arn')
  )
  const doc = JSON.parse(policy.policy.value)
  const statements: Statement[] = doc.Statement.map((s: any) => ({
    actions: s.Action,
    resources: s.Resource,
    conditions: s.Condition
      ? Object.entries(s.Condition).flatMap(([test, v]) =>
          Object.entries(v as object).map(([variable, values]) => ({ test, variable, values }))
        )
      : undefined
  }))
  assert.ok(doc.Statement.every((s: any) => s.Effect === 'Allow'))
  const g = grants(statements)
  assert.ok(can(g, 's3:PutObject', STORE_PREFIXES.datasets) && can(g, 's3:GetObject', STORE_PREFIXES.tombstones))
  assert.ok(!can(g, 's3:PutObject', STORE_PREFIXES.tombstones), 'only the API deletes datasets')
  assert.ok(can(g, 's3:PutObject', STORE_PREFIXES.encoders), 'publishes the encoder catalog')
  assert.ok(!g.some(x => x.resource === STORE_PREFIXES.apiKeys))
  assert.ok(can(g, 'sqs:ReceiveMessage', QUEUES.encode) && can(g, 'sqs:ChangeMessageVisibility', QUEUES.encode))
  assert.ok(!g.some(x => x.resource === QUEUES.analysis))
  // The instance role is the ECS agent's, not the worker's.
  assert.deepEqual(
    h
      .byType('aws.iam.RolePolicyAttachment')
      .map(a => `${str(a.args.role)} ${a.args.policyArn}`)
      .sort(),
    [
      `${ref('aws.iam.Role', 'GpuExecutionRole', 'name')} arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy`,
      `${ref('aws.iam.Role', 'GpuInstanceRole', 'name')} arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role`
    ]
  )
})

test('HF_TOKEN: with HF_TOKEN_SECRET_ARN the worker gets it from Secrets Manager, readable by the execution role only; without, nothing', async () => {
  assert.equal(container().secrets, undefined)
  assert.ok(!h.byType('aws.iam.RolePolicy').some(p => p.name === 'GpuExecutionHfToken'))
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:latentbase/hf-token-AbCdEf'
  process.env.HF_TOKEN_SECRET_ARN = arn
  try {
    const withToken = await evaluateSstConfig(`${ROOT}sst.config.ts`)
    const task = JSON.parse(withToken.one('aws.ecs.TaskDefinition', 'GpuWorkerTask').args.containerDefinitions.value)[0]
    assert.deepEqual(task.secrets, [{ name: 'HF_TOKEN', valueFrom: arn }])
    assert.ok(!('HF_TOKEN' in envOf(task)), 'the token is never in the task definition')
    const policy = withToken.one('aws.iam.RolePolicy', 'GpuExecutionHfToken').args
    assert.equal(str(policy.role), ref('aws.iam.Role', 'GpuExecutionRole', 'id'))
    assert.deepEqual(JSON.parse(policy.policy.value).Statement, [
      { Effect: 'Allow', Action: ['secretsmanager:GetSecretValue'], Resource: [arn] }
    ])
    // The worker's own role (which a source URL could reach through the SDK's credentials) gains nothing.
    const taskPolicy = withToken.one('aws.iam.RolePolicy', 'GpuTaskPolicy').args.policy.value
    assert.ok(!taskPolicy.includes('secretsmanager'))
    // A token pasted where the ARN goes is refused before anything is declared.
    process.env.HF_TOKEN_SECRET_ARN = 'hf_abcdef'
    await assert.rejects(evaluateSstConfig(`${ROOT}sst.config.ts`), /HF_TOKEN_SECRET_ARN must be a Secrets Manager/)
  } finally {
    delete process.env.HF_TOKEN_SECRET_ARN
  }
})

test('IAM, analysis Lambda: reads datasets, writes analyses; consumes the analysis queue only; no keys', () => {
  const g = grants(h.one('sst.aws.Function', 'AnalysisConsumer').args.permissions)
  assert.ok(can(g, 's3:GetObject', STORE_PREFIXES.datasets) && !can(g, 's3:PutObject', STORE_PREFIXES.datasets))
  assert.ok(can(g, 's3:PutObject', STORE_PREFIXES.analyses))
  assert.ok(can(g, 'sqs:ReceiveMessage', QUEUES.analysis) && can(g, 'sqs:DeleteMessage', QUEUES.analysis))
  assert.ok(!g.some(x => x.resource === QUEUES.encode || x.resource === STORE_PREFIXES.apiKeys))
})

test('stack outputs name the API URL, the bucket, both queues and their DLQs, and the image repository', () => {
  assert.equal(str(h.outputs.api), ref('sst.aws.Function', 'Api', 'url'))
  assert.equal(str(h.outputs.encodeDlq), ref('sst.aws.Queue', 'EncodeDlq', 'url'))
  assert.equal(str(h.outputs.analysisDlq), ref('sst.aws.Queue', 'AnalysisDlq', 'url'))
  assert.equal(str(h.outputs.gpuWorkerRepository), ref('aws.ecr.Repository', 'GpuWorkerRepo', 'repositoryUrl'))
})
