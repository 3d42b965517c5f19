// The BullMQ baseline of bench/queue.py: the same no-op jobs, job count, concurrency and
// pickup-latency schedule, on a local Redis. Prints one JSON object.
import { Queue, Worker } from "bullmq";

const args = Object.fromEntries(
  process.argv.slice(2).map((a, i, all) => (a.startsWith("--") ? [a.slice(2), all[i + 1]] : null)).filter(Boolean),
);
const port = Number(args.port ?? 6379);
const jobs = Number(args.jobs ?? 20000);
const concurrency = Number(args.concurrency ?? 10);
const latencyJobs = Number(args["latency-jobs"] ?? 500);
const rate = Number(args.rate ?? 50);
const producers = Number(args.producers ?? 1);
const connection = { host: "127.0.0.1", port };
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const percentile = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

async function throughput() {
  const queue = new Queue(`throughput-${producers}`, { connection });
  await queue.obliterate({ force: true });
  let done = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const worker = new Worker(`throughput-${producers}`, async () => null, { connection, concurrency });
  worker.on("completed", () => {
    if (++done === jobs) finish();
  });
  await worker.waitUntilReady();
  const t0 = now();
  // Each producer awaits every add, as a request handler does before it answers.
  const produce = async (p) => {
    for (let i = p; i < jobs; i += producers) await queue.add("noop", { n: i });
  };
  await Promise.all(Array.from({ length: producers }, (_, p) => produce(p)));
  await finished;
  const seconds = (now() - t0) / 1000;
  await worker.close();
  await queue.close();
  return jobs / seconds;
}

async function pickup() {
  const queue = new Queue("pickup", { connection });
  await queue.obliterate({ force: true });
  const latencies = [];
  const worker = new Worker(
    "pickup",
    async (job) => {
      latencies.push(now() - job.data.t);
    },
    { connection, concurrency },
  );
  await worker.waitUntilReady();
  await sleep(200);
  for (let i = 0; i < latencyJobs; i++) {
    await queue.add("noop", { t: now() });
    await sleep(1000 / rate);
  }
  while (latencies.length < latencyJobs) await sleep(10);
  await worker.close();
  await queue.close();
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

const jobsPerS = await throughput();
const lat = latencyJobs > 0 ? await pickup() : { p50: null, p99: null };
console.log(JSON.stringify({ jobs_per_s: jobsPerS, pickup_p50_ms: lat.p50, pickup_p99_ms: lat.p99 }));
process.exit(0);
