import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { CONVERTED_PLATES_PREFIX, TABLE } from '../functions/shared/resources.ts';

export interface StorageProps {
  /**
   * Frames and manifests are deleted this many days after they are written. Absent (the default), they are
   * kept until the production deletes them: they are deliverables.
   */
  readonly retentionDays?: number;
  /** RETAIN keeps the table and the buckets, with their data, when the stack is deleted. */
  readonly removalPolicy: RemovalPolicy.RETAIN | RemovalPolicy.DESTROY;
}

/** Job, frame, event, asset and API key records in DynamoDB; frames, manifests and assets in S3. */
export class Storage extends Construct {
  readonly table: Table;
  readonly bucket: Bucket;
  /** Plates and other assets, content-addressed; kept until no asset holds them, never expired. */
  readonly assets: Bucket;
  readonly accessLogs: Bucket;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    const destroy = props.removalPolicy === RemovalPolicy.DESTROY;

    this.table = new Table(this, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TABLE.ttlAttribute,
      // A retained table is also protected from a console or CLI delete; a disposable one must not be.
      deletionProtection: !destroy,
      removalPolicy: props.removalPolicy,
    });
    for (const index of TABLE.indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        projectionType: ProjectionType.ALL,
      });
    }

    const secure = {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: props.removalPolicy,
      // Emptying a bucket is what DESTROY asks for: CloudFormation cannot delete a bucket with objects.
      autoDeleteObjects: destroy,
    } as const;

    this.accessLogs = new Bucket(this, 'AccessLogs', {
      ...secure,
      lifecycleRules: [
        { id: 'expire-access-logs', expiration: Duration.days(Math.max(90, props.retentionDays ?? 90)) },
      ],
    });
    Validations.of(this.accessLogs).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This is the access log bucket of the frames and asset buckets; logging it into itself would loop.',
    });

    this.bucket = new Bucket(this, 'Frames', {
      ...secure,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'frames/',
      lifecycleRules: [
        ...(props.retentionDays !== undefined
          ? [{ id: 'expire-frames', expiration: Duration.days(props.retentionDays) }]
          : []),
        // The model-space copies of EXR plates (functions/worker/deliverables.ts) are a cache, made again when gone.
        { id: 'expire-colour-conversions', prefix: CONVERTED_PLATES_PREFIX, expiration: Duration.days(7) },
        // lib-storage uploads large frames in parts; a worker killed mid-upload leaves parts that bill forever.
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
      ],
    });

    // Not the frames bucket: its lifecycle may expire every object after retentionDays (frame keys share no
    // prefix a rule could leave out), and a plate must live as long as an asset holds it. Framecast
    // deletes content when no asset refers to it. Uploads are single presigned PUTs, never multipart.
    this.assets = new Bucket(this, 'Assets', {
      ...secure,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'assets/',
    });
  }
}
