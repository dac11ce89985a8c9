using BufferService;

// A service that streams large responses and buffers large uploads, with Kestrel's buffers from
// Buddy (BufferService:UseBuddy, on by default) or from Kestrel's own pool.
WebApplicationBuilder builder = WebApplication.CreateBuilder(args);
bool useBuddy = builder.Configuration.GetValue("BufferService:UseBuddy", true);
if (useBuddy) builder.WebHost.UseBuddyMemoryPool();
builder.Services.AddSingleton<MemorySampler>();
builder.Services.AddHostedService(provider => provider.GetRequiredService<MemorySampler>());

WebApplication app = builder.Build();
app.MapGet("/", () => useBuddy ? "BufferService: Kestrel rents from Buddy\n" : "BufferService: Kestrel's own pool\n");
app.MapGet("/bytes/{length:int}", Endpoints.WriteBytes);
app.MapPost("/upload", (HttpRequest request) => Endpoints.ReadUpload(request));
app.MapPost("/exchange/{length:int}", Endpoints.Exchange);
app.MapGet("/stats", (MemorySampler sampler) => sampler.Current());
// The TechEmpower shapes, for small-request throughput.
app.MapGet("/plaintext", () => Results.Text("Hello, World!"));
app.MapGet("/json", () => Results.Json(new Greeting("Hello, World!")));
app.Run();

internal sealed record Greeting(string Message);
