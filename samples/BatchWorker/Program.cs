using BatchWorker;
using Buddy.Arrow;

// A worker service that processes bursts of Arrow record batches in a Buddy arena: between bursts
// the page reporter hands the batches' memory back to the OS, and each burst's line shows it.
HostApplicationBuilder builder = Host.CreateApplicationBuilder(args);
builder.Services.AddBuddy(options => options.Arena = options.Arena with
{
    // Batches are large and native: a reserved arena, growing by 64 MiB sections to 2 GiB.
    Backing = Buddy.ArenaBacking.Reserve, Size = 64L << 20, SectionSize = 64L << 20, MaximumSize = 2L << 30,
});
builder.Services.AddSingleton(provider => new BuddyArrowAllocator(provider.GetRequiredService<Buddy.BuddyArena>()));
builder.Services.AddHostedService<BurstProcessor>();
builder.Build().Run();
