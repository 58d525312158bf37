/**
 * @module The GPU worker as ECS on EC2 GPU instances, with the `aws` Pulumi provider: SST's Service runs only on
 * Fargate, which has no GPUs. A capacity provider over an auto-scaling group of GPU instances (ECS-optimized GPU AMI),
 * one task per GPU, scaled on the encode queue's depth: out on ApproximateNumberOfMessagesVisible, in to zero when
 * nothing is visible or in flight for a while (so a busy worker is never stopped for a short queue).
 */
import {
  ENCODE_MAX_RECEIVES,
  GPU_INSTANCE_TYPE,
  REGION,
  GPU_MAX_INSTANCES,
  SCALE_IN_IDLE_MINUTES,
  SCALE_OUT_STEPS
} from './constants.ts'
import { gpuWorkerStatements, policyDocument } from './iam.ts'
import type { Storage } from './storage.ts'

const assume = (service: string) =>
  $jsonStringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Allow', Principal: { Service: service }, Action: 'sts:AssumeRole' }]
  })

export function gpuWorker(s: Storage) {
  // Public subnets and no inbound rules: the worker only calls out (S3, SQS, ECR, sources); no NAT gateway to pay for.
  const vpc = new sst.aws.Vpc('Vpc', { az: 2 })
  const securityGroup = new aws.ec2.SecurityGroup('GpuWorkerSg', {
    vpcId: vpc.id,
    description: 'Latentbase GPU worker: egress only',
    egress: [{ protocol: '-1', fromPort: 0, toPort: 0, cidrBlocks: ['0.0.0.0/0'], ipv6CidrBlocks: ['::/0'] }]
  })

  const repository = new aws.ecr.Repository('GpuWorkerRepo', {
    imageScanningConfiguration: { scanOnPush: true },
    forceDelete: true
  })
  const imageTag = process.env.GPU_WORKER_IMAGE_TAG ?? 'latest'
  const cluster = new aws.ecs.Cluster('GpuCluster', { settings: [{ name: 'containerInsights', value: 'enabled' }] })

  // Instances: the ECS agent's role only (the task gets its own, below).
  const instanceRole = new aws.iam.Role('GpuInstanceRole', { assumeRolePolicy: assume('ec2.amazonaws.com') })
  new aws.iam.RolePolicyAttachment('GpuInstanceEcs', {
    role: instanceRole.name,
    policyArn: 'arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role'
  })
  const instanceProfile = new aws.iam.InstanceProfile('GpuInstanceProfile', { role: instanceRole.name })
  const ami = aws.ssm.getParameterOutput({
    name: '/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id'
  })

  const launchTemplate = new aws.ec2.LaunchTemplate('GpuLaunchTemplate', {
    imageId: ami.value,
    instanceType: GPU_INSTANCE_TYPE,
    iamInstanceProfile: { arn: instanceProfile.arn },
    networkInterfaces: [{ associatePublicIpAddress: 'true', securityGroups: [securityGroup.id] }],
    // IMDSv2 with a hop limit of 1: containers (bridge network, one hop further) cannot reach the instance's
    // credentials, so a source URL that slips past the URL guard still finds no metadata endpoint.
    metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 1, httpEndpoint: 'enabled' },
    blockDeviceMappings: [{ deviceName: '/dev/xvda', ebs: { volumeSize: 100, volumeType: 'gp3', encrypted: 'true' } }],
    userData: $interpolate`#!/bin/bash
cat >> /etc/ecs/ecs.config <<CFG
ECS_CLUSTER=${cluster.name}
ECS_ENABLE_GPU_SUPPORT=true
ECS_CONTAINER_STOP_TIMEOUT=120s
CFG`.apply((text: string) => Buffer.from(text).toString('base64'))
  })

  const autoScalingGroup = new aws.autoscaling.Group(
    'GpuAsg',
    {
      minSize: 0,
      maxSize: GPU_MAX_INSTANCES,
      vpcZoneIdentifiers: vpc.publicSubnets,
      launchTemplate: { id: launchTemplate.id, version: '$Latest' },
      // ECS managed termination protection needs it: ECS, not the ASG, picks which instances may go.
      protectFromScaleIn: true,
      tags: [{ key: 'AmazonECSManaged', value: 'true', propagateAtLaunch: true }]
    },
    { ignoreChanges: ['desiredCapacity'] }
  )

  const capacityProvider = new aws.ecs.CapacityProvider('GpuCapacity', {
    autoScalingGroupProvider: {
      autoScalingGroupArn: autoScalingGroup.arn,
      managedTerminationProtection: 'ENABLED',
      managedScaling: {
        status: 'ENABLED',
        targetCapacity: 100,
        minimumScalingStepSize: 1,
        maximumScalingStepSize: GPU_MAX_INSTANCES
      }
    }
  })
  new aws.ecs.ClusterCapacityProviders('GpuClusterCapacity', {
    clusterName: cluster.name,
    capacityProviders: [capacityProvider.name],
    defaultCapacityProviderStrategies: [{ capacityProvider: capacityProvider.name, weight: 1, base: 0 }]
  })

  // The task's own role: its bucket prefixes and its queue only.
  const taskRole = new aws.iam.Role('GpuTaskRole', { assumeRolePolicy: assume('ecs-tasks.amazonaws.com') })
  new aws.iam.RolePolicy('GpuTaskPolicy', {
    role: taskRole.id,
    policy: $jsonStringify(
      policyDocument(gpuWorkerStatements($interpolate, { bucketArn: s.bucket.arn, encodeQueueArn: s.encode.arn }))
    )
  })
  const executionRole = new aws.iam.Role('GpuExecutionRole', { assumeRolePolicy: assume('ecs-tasks.amazonaws.com') })
  new aws.iam.RolePolicyAttachment('GpuExecutionPolicy', {
    role: executionRole.name,
    policyArn: 'arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy'
  })
  // A Hugging Face token for gated readers, SAEs and datasets (Gemma Scope, private sets): a Secrets Manager secret
  // the operator made, named at deploy time. ECS injects it as HF_TOKEN when a task starts, so it is in neither the
  // task definition nor the image, and only the execution role (not the worker's own) may read it.
  const hfTokenSecretArn = process.env.HF_TOKEN_SECRET_ARN
  if (hfTokenSecretArn) {
    if (!/^arn:aws[\w-]*:secretsmanager:[\w-]+:\d{12}:secret:.+/.test(hfTokenSecretArn))
      throw new Error(
        `HF_TOKEN_SECRET_ARN must be a Secrets Manager secret's ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME), not "${hfTokenSecretArn}"`
      )
    new aws.iam.RolePolicy('GpuExecutionHfToken', {
      role: executionRole.id,
      policy: $jsonStringify(
        policyDocument([{ actions: ['secretsmanager:GetSecretValue'], resources: [hfTokenSecretArn] }])
      )
    })
  }
  const logGroup = new aws.cloudwatch.LogGroup('GpuWorkerLogs', { retentionInDays: 30 })

  const taskDefinition = new aws.ecs.TaskDefinition('GpuWorkerTask', {
    family: $interpolate`${$app.name}-${$app.stage}-gpu-worker`,
    requiresCompatibilities: ['EC2'],
    networkMode: 'bridge',
    taskRoleArn: taskRole.arn,
    executionRoleArn: executionRole.arn,
    containerDefinitions: $jsonStringify([
      {
        name: 'gpu-worker',
        // Built from gpu-worker/Dockerfile and pushed to this repository (see the README's deploy section).
        image: $interpolate`${repository.repositoryUrl}:${imageTag}`,
        essential: true,
        memoryReservation: 12_288,
        resourceRequirements: [{ type: 'GPU', value: '1' }],
        // SIGTERM, then up to 120 s (the ECS maximum) to finish or give back the job in hand.
        stopTimeout: 120,
        environment: [
          { name: 'BUCKET', value: s.bucket.name },
          { name: 'QUEUE_URL', value: s.encode.url },
          { name: 'AWS_REGION', value: REGION },
          { name: 'MAX_RECEIVES', value: String(ENCODE_MAX_RECEIVES) },
          { name: 'WORKER_CONCURRENCY', value: '1' },
          { name: 'LATENTBASE_DEVICE', value: 'cuda' }
        ],
        ...(hfTokenSecretArn ? { secrets: [{ name: 'HF_TOKEN', valueFrom: hfTokenSecretArn }] } : {}),
        logConfiguration: {
          logDriver: 'awslogs',
          options: { 'awslogs-group': logGroup.name, 'awslogs-region': REGION, 'awslogs-stream-prefix': 'gpu-worker' }
        }
      }
    ])
  })

  const service = new aws.ecs.Service(
    'GpuWorker',
    {
      cluster: cluster.arn,
      taskDefinition: taskDefinition.arn,
      desiredCount: 0,
      capacityProviderStrategies: [{ capacityProvider: capacityProvider.name, weight: 1, base: 0 }],
      // A job in hand is redelivered if its task is replaced, so a deployment may stop every task at once.
      deploymentMinimumHealthyPercent: 0,
      deploymentMaximumPercent: 100,
      placementConstraints: [{ type: 'distinctInstance' }]
    },
    { ignoreChanges: ['desiredCount'] }
  )

  const target = new aws.appautoscaling.Target('GpuWorkerScaling', {
    serviceNamespace: 'ecs',
    scalableDimension: 'ecs:service:DesiredCount',
    resourceId: $interpolate`service/${cluster.name}/${service.name}`,
    minCapacity: 0,
    maxCapacity: GPU_MAX_INSTANCES
  })
  const scaleOut = new aws.appautoscaling.Policy('GpuWorkerScaleOut', {
    policyType: 'StepScaling',
    serviceNamespace: target.serviceNamespace,
    scalableDimension: target.scalableDimension,
    resourceId: target.resourceId,
    stepScalingPolicyConfiguration: {
      adjustmentType: 'ChangeInCapacity',
      cooldown: 120,
      metricAggregationType: 'Maximum',
      // Bounds are relative to the alarm's threshold (1 visible message).
      stepAdjustments: SCALE_OUT_STEPS.map((step, i) => ({
        metricIntervalLowerBound: String(step.atLeast - 1),
        ...(i + 1 < SCALE_OUT_STEPS.length
          ? { metricIntervalUpperBound: String(SCALE_OUT_STEPS[i + 1].atLeast - 1) }
          : {}),
        scalingAdjustment: step.add
      }))
    }
  })
  new aws.cloudwatch.MetricAlarm('EncodeBacklog', {
    namespace: 'AWS/SQS',
    metricName: 'ApproximateNumberOfMessagesVisible',
    dimensions: { QueueName: s.encode.nodes.queue.name },
    statistic: 'Maximum',
    period: 60,
    evaluationPeriods: 1,
    comparisonOperator: 'GreaterThanOrEqualToThreshold',
    threshold: SCALE_OUT_STEPS[0].atLeast,
    alarmActions: [scaleOut.arn]
  })
  const scaleIn = new aws.appautoscaling.Policy('GpuWorkerScaleIn', {
    policyType: 'StepScaling',
    serviceNamespace: target.serviceNamespace,
    scalableDimension: target.scalableDimension,
    resourceId: target.resourceId,
    stepScalingPolicyConfiguration: {
      adjustmentType: 'ExactCapacity',
      cooldown: 300,
      metricAggregationType: 'Maximum',
      stepAdjustments: [{ metricIntervalUpperBound: '0', scalingAdjustment: 0 }]
    }
  })
  // Idle = nothing visible and nothing in flight: a worker holding a long job keeps its message not-visible.
  new aws.cloudwatch.MetricAlarm('EncodeIdle', {
    comparisonOperator: 'LessThanOrEqualToThreshold',
    threshold: 0,
    evaluationPeriods: SCALE_IN_IDLE_MINUTES,
    treatMissingData: 'breaching',
    metricQueries: [
      {
        id: 'visible',
        metric: {
          namespace: 'AWS/SQS',
          metricName: 'ApproximateNumberOfMessagesVisible',
          dimensions: { QueueName: s.encode.nodes.queue.name },
          period: 60,
          stat: 'Maximum'
        }
      },
      {
        id: 'inflight',
        metric: {
          namespace: 'AWS/SQS',
          metricName: 'ApproximateNumberOfMessagesNotVisible',
          dimensions: { QueueName: s.encode.nodes.queue.name },
          period: 60,
          stat: 'Maximum'
        }
      },
      { id: 'total', expression: 'visible + inflight', label: 'encode jobs waiting or running', returnData: true }
    ],
    alarmActions: [scaleIn.arn]
  })

  return { cluster, service, repository, capacityProvider, autoScalingGroup, taskDefinition }
}
