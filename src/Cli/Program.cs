using System.CommandLine;
using Buddy.Cli;

var root = new RootCommand("Buddy: a native-memory buddy allocator with free page reporting.");
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(FragmentationCommand.Create());
root.Subcommands.Add(StressCommand.Create());
root.Subcommands.Add(MonitorCommand.Create());
root.Subcommands.Add(ChurnCommand.Create());
root.Subcommands.Add(SectionsCommand.Create());
root.Subcommands.Add(SqueezeCommand.Create());
root.Subcommands.Add(GcHeapCommand.Create());
return root.Parse(args).Invoke();
